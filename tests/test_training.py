"""Real (tiny) training runs on CPU: run folder contents, exact resume, generation from a checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cond_lsgan.checkpoint import file_digest, list_checkpoints, load_checkpoint
from cond_lsgan.config import Config, load_config
from cond_lsgan.sampling.generate import GenerateRequest, generate_store, sample_grid
from cond_lsgan.sampling.loaded_generator import LoadedGenerator
from cond_lsgan.training.loop import train
from data_tools.errors import InputError
from data_tools.store import read_store
from PIL import Image

from helpers import TINY_TRAIN, assert_mentions

# metrics, grids and checkpoints every 2 steps, the newest 2 kept: what the run folder test counts
EVERY_2 = ["train.log_every=2", "train.sample_every=2", "train.checkpoint_every=2", "train.keep_checkpoints=2"]


def seed32_config(*overrides: str) -> Config:
    """The defaults' seed32 model (full width, 32x32) with TINY_TRAIN, EVERY_2 and `overrides`."""
    return load_config(None, [*TINY_TRAIN, *EVERY_2, *overrides])


def states_equal(a: dict, b: dict) -> bool:
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(states_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(states_equal(x, y) for x, y in zip(a, b))
    return a == b


def test_run_folder_holds_config_metrics_grids_and_checkpoints(digits32, tmp_path):
    config = seed32_config("train.steps=6")
    result = train(config, digits32, tmp_path / "run")
    assert result.step == 6 and result.checkpoint.name == "step_0000006.pt"
    assert json.loads((tmp_path / "run" / "config.json").read_text()) == config.to_dict()
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4, 6]
    assert all(np.isfinite([r["d_loss"], r["g_loss"]]).all() and r["images_per_s"] > 0 for r in records)
    assert sorted(p.name for p in (tmp_path / "run" / "samples").iterdir()) == [f"step_000000{s}.png" for s in (2, 4, 6)]
    assert [p.name for p in list_checkpoints(tmp_path / "run")] == ["step_0000004.pt", "step_0000006.pt"]
    state = load_checkpoint(result.checkpoint)
    assert state["step"] == 6 and state["classes"]["text"] == [str(d) for d in range(10)]
    assert set(state) >= {"generator", "generator_ema", "discriminator", "optimizer_g", "optimizer_d", "rng", "config"}


@pytest.mark.parametrize("order", ["g_then_d", "d_then_g"])
def test_resume_continues_exactly(digits32, tmp_path, order):
    """3 steps, then a resume to 9, equals 9 uninterrupted steps weight for weight (8 batches an epoch, so it crosses one)."""
    straight = train(seed32_config("train.steps=9", f"train.order={order}"), digits32, tmp_path / "straight")
    train(seed32_config("train.steps=3", f"train.order={order}"), digits32, tmp_path / "resumed")
    resumed = train(seed32_config("train.steps=9", f"train.order={order}"), digits32, tmp_path / "resumed", resume="auto")
    a, b = load_checkpoint(straight.checkpoint), load_checkpoint(resumed.checkpoint)
    for key in ("generator", "generator_ema", "discriminator", "optimizer_g", "optimizer_d", "rng"):
        assert states_equal(a[key], b[key]), key
    # ... and training really changed the weights.
    first = load_checkpoint(list_checkpoints(tmp_path / "resumed")[0])
    assert not states_equal(first["generator"], b["generator"])


def test_resume_refuses_a_different_model_or_an_existing_run(digits32, tmp_path):
    train(seed32_config("train.steps=2"), digits32, tmp_path / "run")
    with pytest.raises(InputError, match="already holds checkpoints; pass --resume auto"):
        train(seed32_config("train.steps=4"), digits32, tmp_path / "run")
    with pytest.raises(InputError, match="was trained with model settings"):
        train(seed32_config("train.steps=4", "model.z_dim=10"), digits32, tmp_path / "run", resume="auto")
    with pytest.raises(InputError, match="beyond train.steps=1"):
        train(seed32_config("train.steps=1"), digits32, tmp_path / "run", resume="auto")


def test_class_count_and_batch_checks(digits32, tmp_path):
    with pytest.raises(InputError) as refused:
        train(seed32_config("train.steps=2", "model.num_classes=5"), digits32, tmp_path / "a")
    assert_mentions(str(refused.value), "model.num_classes is 5", "10 classes")
    with pytest.raises(InputError) as refused:
        train(seed32_config("train.steps=2", "train.batch_size=128"), digits32, tmp_path / "b")
    assert_mentions(str(refused.value), "64 images", "train.batch_size=128")


def test_regular_gan_loss_trains(digits32, tmp_path):
    result = train(seed32_config("train.steps=2", "loss.kind=bce"), digits32, tmp_path / "run")
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert result.step == 2 and np.isfinite(record["d_loss"]) and record["d_loss"] > 0


def test_generation_needs_only_the_checkpoint(digits32, tmp_path):
    result = train(seed32_config("train.steps=2"), digits32, tmp_path / "myrun")
    out = tmp_path / "gen.h5"
    assert generate_store(GenerateRequest(result.checkpoint, per_class=21, seed=3, batch_size=8, device="cpu"), out) == 21
    generated = read_store(out)
    assert generated.images.shape == (21, 32, 32) and generated.images.dtype == np.uint8
    assert generated.classes.text == ["generated"] and generated.labels.tolist() == [0] * 21
    assert generated.sources == ["generated:myrun"]
    assert generated.provenance["checkpoint_sha256"] == file_digest(result.checkpoint)
    assert generated.provenance["step"] == 2
    # Reproducible from the seed, batch size aside; another seed gives other images.
    generate_store(GenerateRequest(result.checkpoint, per_class=21, seed=3, batch_size=21, device="cpu"), tmp_path / "again.h5")
    np.testing.assert_array_equal(read_store(tmp_path / "again.h5").images, generated.images)
    generate_store(GenerateRequest(result.checkpoint, per_class=21, seed=4, device="cpu"), tmp_path / "other.h5")
    assert not np.array_equal(read_store(tmp_path / "other.h5").images, generated.images)
    # The images are the EMA generator's output for that seed's noise.
    loaded = LoadedGenerator(result.checkpoint, device="cpu")
    z = loaded.generator.sample_z(21, torch.Generator().manual_seed(3))
    expected = ((loaded.generator(z) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).squeeze(1).numpy()
    np.testing.assert_array_equal(expected, generated.images)

    grid = sample_grid(result.checkpoint, tmp_path / "grid.png", n=4, device="cpu")
    assert Image.open(grid).size == (2 * (2 * 32 + 2) + 2,) * 2  # 2x2 cells of 64 px, 2 px gaps
