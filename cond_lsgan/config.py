"""Run configuration: dataclasses, TOML loading and `section.key=value` overrides.

A config is data, not code: three sections (`model`, `loss`, `train`) of typed fields.
A TOML file sets some of them, command-line overrides set more, and every key is checked
against the dataclass fields, so a typo is an error that lists the valid names instead
of a silently ignored setting. The resolved config is saved in every run folder and
checkpoint, which is all `generate` needs to rebuild the model.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .data_tools_api import InputError


@dataclass
class ModelConfig:
    arch: str = "seed32"  # a name from cond_lsgan.models.ARCHITECTURES
    z_dim: int = 100  # length of the noise vector
    conditional: bool = False  # G and D take the class label (paper28 always does)
    num_classes: int = 0  # 0: take it from the dataset's class table; else must match it
    embed_dim: int = 256  # size of the label mapping Φ(y)
    width: float = 1.0  # multiplies every hidden layer's width (paper28)
    label_concat: str = "fused"  # tiled-label concatenation before a conv: "fused" bias map or "naive"
    d_label_into_input: bool = False  # also concatenate the tiled label to D's input image (paper28)
    d_condition: str = "concat"  # how D sees Φ_D(y) (paper28): "concat" (the paper), "projection" (a head <Φ_D(y), h>), "both"
    g_norm: str = "batch"  # G's BatchNorms (paper28): "batch" (the paper) or "conditional" (gain and bias linear in Φ_G(y))
    d_spectral_norm: bool = False  # divide D's layer weights by their largest singular value (paper28)
    label_init: str = "random"  # Φ's starting rows: "random" N(0, 0.02) (the paper) or "glyphs" (each class's mean glyph, models/label_init.py)


@dataclass
class LossConfig:
    kind: str = "lsgan"  # "lsgan" (least squares) or "bce" (regular GAN, sigmoid cross-entropy)
    a: float = 0.0  # LSGAN target for fake samples in D's loss
    b: float = 1.0  # LSGAN target for real samples in D's loss
    c: float = 1.0  # LSGAN target G wants D to output for fake samples
    mode_seeking: float = 0.0  # weight of MSGAN's mode-seeking term in G's loss (pairs of noise per label); 0: off
    classifier: str = ""  # a judge file (evaluate train-judge on this data) whose cross-entropy on G's images joins G's loss; "": off
    classifier_weight: float = 0.1  # the weight of that term (training/judge_loss.py)


@dataclass
class TrainConfig:
    steps: int = 10000  # total optimisation steps (one G and one D update each)
    batch_size: int = 64  # the global batch: under torchrun each of the N ranks takes batch_size / N of it
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    order: str = "g_then_d"  # "g_then_d" (the reference code: D reuses G's images) or "d_then_g" (the paper)
    ema_decay: float = 0.999  # generator weight averaging (warmed up over the first steps); 0 disables it
    precision: str = "auto"  # "auto" (bf16 where the CPU/GPU computes it natively, else fp32), "fp32", "bf16", "fp16" (CUDA)
    channels_last: bool = True  # NHWC activations and weights: the layout oneDNN and cuDNN run fastest
    fast_paths: bool = True  # swap in the exact faster layer forms for the device (cond_lsgan/fast); false: the plain layers
    compile: bool = False  # torch.compile G and D: about a minute of compiling, measured no faster on a 2-core CPU
    device: str = "auto"  # "auto" (CUDA if present), "cpu", "cuda", "cuda:1", ...
    seed: int = 0
    log_every: int = 100  # steps between metrics.jsonl lines
    sample_every: int = 1000  # steps between sample grids
    checkpoint_every: int = 1000  # steps between checkpoints
    keep_checkpoints: int = 3  # newest checkpoints kept in the run folder
    grid_size: int = 64  # images in each sample grid
    sync_batchnorm: bool = True  # under torchrun, BatchNorm statistics of the global batch (SyncBatchNorm), not of each rank's slice
    max_bad_steps: int = 20  # consecutive steps with a non-finite loss (each such update skipped) before the run stops with an error
    augment: str = ""  # differentiable augmentation of every image D sees (training/diff_augment.py): "", "translation", "cutout", "translation,cutout"
    memory_check: bool = True  # refuse, before allocating, a run whose estimated memory exceeds what the device has (memory.py); false: try anyway
    tensorboard: bool = False  # also write losses, images/s, bad steps and sample grids as TensorBoard events in <run>/tensorboard (needs the tensorboard extra)


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)


CHOICES = {
    "model.label_concat": ("fused", "naive"),
    "model.d_condition": ("concat", "projection", "both"),
    "model.g_norm": ("batch", "conditional"),
    "model.label_init": ("random", "glyphs"),
    "loss.kind": ("lsgan", "bce"),
    "train.order": ("g_then_d", "d_then_g"),
    "train.precision": ("auto", "fp32", "bf16", "fp16"),
}
POSITIVE = ("model.z_dim", "model.embed_dim", "model.width", "train.steps", "train.batch_size", "train.log_every", "train.sample_every",
            "train.checkpoint_every", "train.keep_checkpoints", "train.grid_size", "train.lr_g", "train.lr_d",
            "train.max_bad_steps")
# Upper bounds, far above any sensible run: a typo like batch_size=10**12 or width=1000 is an
# error here instead of an attempt to allocate terabytes.
MAXIMUM = {"model.z_dim": 8192, "model.embed_dim": 8192, "model.width": 4.0, "model.num_classes": 1_000_000,
           "train.batch_size": 65536, "train.grid_size": 1024, "train.seed": 2**32 - 1}


def config_from_dict(values: dict[str, Any], origin: str = "config") -> Config:
    """Build a Config from nested dicts, rejecting unknown sections and keys."""
    if not isinstance(values, dict):
        raise InputError(f"{origin}: a config must be a table of sections, got {type(values).__name__}")
    config = Config()
    for section_name, section_values in values.items():
        section = _section(config, section_name, origin)
        if not isinstance(section_values, dict):
            raise InputError(f"{origin}: [{section_name}] must be a table of settings")
        for key, value in section_values.items():
            _set(section, section_name, key, value, origin)
    check_config(config)
    return config


def load_config(path: str | Path | None, overrides: Iterable[str] = ()) -> Config:
    """Read a TOML file (or start from defaults when `path` is None) and apply overrides."""
    values: dict[str, Any] = {}
    if path is not None:
        try:
            values = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"config file not found: {path}") from None
        except OSError as error:  # a folder, no permission
            raise InputError(f"cannot read config {path}: {error.strerror or error}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise InputError(f"{path}: invalid TOML ({error})") from None
    config = config_from_dict(values, origin=str(path or "defaults"))
    return apply_overrides(config, overrides)


def apply_overrides(config: Config, overrides: Iterable[str]) -> Config:
    """Apply `section.key=value` strings; each value is parsed as the field's type."""
    for item in overrides:
        name, sep, text = item.partition("=")
        section_name, dot, key = name.strip().partition(".")
        if not sep or not dot:
            raise InputError(f"override {item!r} must look like section.key=value (e.g. train.steps=300)")
        section = _section(config, section_name, "override")
        _set(section, section_name, key, _parse_value(section, section_name, key, text.strip()), "override")
    check_config(config)
    return config


def check_config(config: Config) -> None:
    """Reject values that are of the right type but make no sense."""
    for section in dataclasses.fields(config):
        for item in dataclasses.fields(getattr(config, section.name)):
            value = getattr(getattr(config, section.name), item.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise InputError(f"{section.name}.{item.name} must be a finite number, got {value}")
    for name, allowed in CHOICES.items():
        value = _get(config, name)
        if value not in allowed:
            raise InputError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    for name in POSITIVE:
        if _get(config, name) <= 0:
            raise InputError(f"{name} must be positive, got {_get(config, name)}")
    if config.model.num_classes < 0:
        raise InputError(f"model.num_classes must be 0 (from the data) or positive, got {config.model.num_classes}")
    if config.model.label_init == "glyphs" and not config.model.conditional:  # before any data is read for the rows
        raise InputError("model.label_init = 'glyphs' needs a conditional model with a label map Φ (model.conditional = true)")
    if config.train.seed < 0:
        raise InputError(f"train.seed must be 0 or more, got {config.train.seed}")
    for name, limit in MAXIMUM.items():
        if _get(config, name) > limit:
            raise InputError(f"{name} must be at most {limit:,}, got {_get(config, name):,}")
    if not 0.0 <= config.train.ema_decay < 1.0:
        raise InputError(f"train.ema_decay must be in [0, 1), got {config.train.ema_decay}")
    for name in ("train.beta1", "train.beta2"):
        if not 0.0 <= _get(config, name) < 1.0:
            raise InputError(f"{name} must be in [0, 1), got {_get(config, name)}")
    for name in ("loss.mode_seeking", "loss.classifier_weight"):
        if _get(config, name) < 0:
            raise InputError(f"{name} must be 0 (off) or positive, got {_get(config, name)}")
    try:
        parse_policy(config.train.augment)
    except ValueError as error:
        raise InputError(f"train.augment: {error}") from None


def _get(config: Config, name: str) -> Any:
    section, key = name.split(".")
    return getattr(getattr(config, section), key)


def _section(config: Config, name: str, origin: str) -> Any:
    sections = [f.name for f in dataclasses.fields(config)]
    if name not in sections:
        raise InputError(f"{origin}: unknown section {name!r}; valid sections: {', '.join(sections)}")
    return getattr(config, name)


def _field_types(section: Any) -> dict[str, type]:
    return {f.name: type(f.default) for f in dataclasses.fields(section)}


def _set(section: Any, section_name: str, key: str, value: Any, origin: str) -> None:
    types = _field_types(section)
    if key not in types:
        raise InputError(f"{origin}: unknown key {section_name}.{key}; valid keys: "
                         + ", ".join(f"{section_name}.{k}" for k in types))
    expected = types[key]
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not expected:
        raise InputError(f"{origin}: {section_name}.{key} must be {expected.__name__}, got {value!r}")
    setattr(section, key, value)


def _parse_value(section: Any, section_name: str, key: str, text: str) -> Any:
    expected = _field_types(section).get(key)
    if expected is None:
        return text  # _set reports the unknown key with the valid names
    try:
        if expected is bool:
            if text.lower() not in ("true", "false"):
                raise ValueError
            return text.lower() == "true"
        if expected is int:
            return int(text)
        if expected is float:
            return float(text)
    except ValueError:
        raise InputError(f"override {section_name}.{key}={text!r}: expected {expected.__name__}") from None
    return text


POLICIES = ("translation", "cutout")  # train.augment: the DiffAugment transforms (training/diff_augment.py)


def parse_policy(text: str) -> tuple[str, ...]:
    """"translation,cutout" -> ("translation", "cutout"); "" -> (); unknown names are a ValueError naming them."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in POLICIES]
    if unknown:
        raise ValueError(f"unknown augmentation {', '.join(unknown)}; choose from: {', '.join(POLICIES)}")
    return names
