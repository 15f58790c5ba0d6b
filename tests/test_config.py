"""Config files, overrides and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from cond_lsgan.config import Config, apply_overrides, config_from_dict, load_config
from data_tools.errors import InputError

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def test_mnist_config_has_the_seed_settings():
    config = load_config(CONFIGS / "mnist.toml")
    assert (config.model.arch, config.model.z_dim) == ("seed32", 100)
    assert (config.loss.kind, config.loss.a, config.loss.b, config.loss.c) == ("lsgan", 0.0, 1.0, 1.0)
    t = config.train
    assert (t.batch_size, t.lr_g, t.lr_d, t.beta1, t.beta2, t.order) == (64, 2e-4, 2e-4, 0.5, 0.999, "g_then_d")


def test_overrides_are_parsed_as_the_field_type():
    config = apply_overrides(Config(), ["train.steps=300", "train.lr_g=1e-3", "loss.kind=bce", "train.ema_decay=0", "train.device=cpu"])
    assert config.train.steps == 300 and isinstance(config.train.steps, int)
    assert config.train.lr_g == 1e-3
    assert config.loss.kind == "bce"
    assert config.train.ema_decay == 0.0 and isinstance(config.train.ema_decay, float)


@pytest.mark.parametrize("override, message", [
    ("train.stpes=3", "unknown key train.stpes; valid keys: train.steps, train.batch_size"),
    ("trian.steps=3", "unknown section 'trian'; valid sections: model, loss, train"),
    ("train.steps=many", "override train.steps='many': expected int"),
    ("train.steps", "must look like section.key=value"),
    ("train.steps=-5", "train.steps must be positive, got -5"),
    ("loss.kind=wgan", "loss.kind must be one of 'lsgan', 'bce', got 'wgan'"),
    ("train.ema_decay=1.5", "train.ema_decay must be in [0, 1)"),
])
def test_bad_overrides(override, message):
    with pytest.raises(InputError) as error:
        apply_overrides(Config(), [override])
    assert message in str(error.value)


def test_file_errors(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[train]\nbatch_sise = 8\n")
    with pytest.raises(InputError, match=r"bad.toml: unknown key train.batch_sise; valid keys: .*train.batch_size"):
        load_config(path)
    path.write_text("[train]\nsteps = '10'\n")
    with pytest.raises(InputError, match="train.steps must be int, got '10'"):
        load_config(path)
    path.write_text("[train\n")
    with pytest.raises(InputError, match="invalid TOML"):
        load_config(path)
    with pytest.raises(InputError, match="config file not found"):
        load_config(tmp_path / "missing.toml")


def test_dict_round_trip():
    config = apply_overrides(Config(), ["train.steps=7", "model.z_dim=16"])
    assert config_from_dict(config.to_dict()) == config
