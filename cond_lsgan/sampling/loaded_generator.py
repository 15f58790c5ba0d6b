"""A generator rebuilt from a checkpoint alone, ready to sample: `LoadedGenerator`.

Everything needed to rebuild it (config, class table, image size) travels in the
checkpoint. It holds the EMA weights by default, in eval mode, with the run's fast paths
(BatchNorm folded) and in the checkpoint's precision where the device runs it (bf16 on a
CPU that has it, under "auto"). It draws noise (at random, truncated, or between fitted
font styles: style_set.py) and renders it in CPU-sized slices. generate.py writes what it
draws; evaluation/scoring.py and style_fit.py use it directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..checkpoint import GENERATOR_KEYS, file_digest, load_checkpoint, mismatch_detail
from ..config import config_from_dict
from ..data_tools_api import ClassTable, InputError
from ..fast import fold_batchnorm, use_fast_paths
from ..memory import check_generation_memory
from ..models import build_models, model_to_pixels
from ..runtime import autocast, resolve_device, resolve_precision
from .style_set import StyleSet, check_reach, mixed_noise

CPU_SLICE = 256  # images per generator call on the CPU (see LoadedGenerator.render)


def cast_linear_weights(generator: nn.Module, dtype: torch.dtype) -> None:
    """Store the weights of G's linear layers in the autocast dtype, once.

    Autocast casts a linear layer's fp32 weight and bias to bf16 on every call. paper28's
    first layer is the largest weight (8M values at full width), and in slices of
    CPU_SLICE images that cast costs more than the product itself. Casting once at load
    rounds the same values the same way, so the images are the same as autocast's.
    """
    for module in generator.modules():
        if isinstance(module, nn.Linear):
            module.to(dtype)


class LoadedGenerator:
    """A generator rebuilt from a checkpoint, with what is known about where it came from."""

    def __init__(self, checkpoint: str | Path, device: str = "auto", weights: str = "ema", precision: str | None = None) -> None:
        if weights not in ("ema", "raw"):
            raise InputError(f"weights must be 'ema' or 'raw', got {weights!r}")
        self.path = Path(checkpoint)
        self.device = resolve_device(device, "--device")
        state = load_checkpoint(self.path, self.device, require=GENERATOR_KEYS)
        self.config = config_from_dict(state["config"], origin=str(self.path))
        self.classes = ClassTable.from_dict(state["classes"])
        self.image_size = int(state["image_size"])
        self.step = int(state["step"])
        try:
            self.generator: nn.Module = build_models(self.config.model, len(self.classes), self.image_size)[0]
        except InputError as error:  # the checkpoint's own settings do not go together
            raise InputError(f"{self.path}: {error}") from None
        try:
            self.generator.load_state_dict(state["generator_ema" if weights == "ema" else "generator"])
        except RuntimeError as error:
            raise InputError(f"{self.path}: weights do not fit its own model config ({mismatch_detail(error)})") from None
        self.generator.to(self.device, memory_format=torch.channels_last).eval().requires_grad_(False)
        if self.config.train.fast_paths:  # the run's choice; the same function either way
            fold_batchnorm(use_fast_paths(self.generator, self.device), self.device)
        self.weights = weights
        if precision is None:  # the checkpoint's, where this device can run it (a GPU run's fp16 on a CPU: auto)
            try:
                self.dtype = resolve_precision(self.config.train.precision, self.device)
            except InputError:
                self.dtype = resolve_precision("auto", self.device)
        else:
            self.dtype = resolve_precision(precision, self.device)
        if self.dtype is not None:  # None: fp32
            cast_linear_weights(self.generator, self.dtype)
        self.styles = None  # a StyleSet (style_set.py): noise drawn between its styles instead of at random
        self.style_reach = 0.0  # how far past a segment's ends styled noise may go (styles.mixed_noise)

    def use_styles(self, path: str | Path, reach: float = 0.0) -> None:
        """Draw every later noise vector between two styles of the file at `path` (cond-lsgan styles),
        up to `reach` of a segment past its ends (styles.mixed_noise)."""
        check_reach(reach)
        styles = StyleSet.load(path, self.path, self.generator.z_dim)  # checked: digest, entries, this checkpoint
        styles.check_mixable(path)
        styles.noise = styles.noise.to(self.device)
        self.styles, self.style_reach = styles, reach

    def check_memory(self, batch_size: int) -> None:
        """Refuse, in one line, a --batch-size this device cannot hold (memory.py), before generating anything."""
        render = CPU_SLICE if self.device.type == "cpu" else None
        check_generation_memory(self.config.model, len(self.classes), self.image_size, batch_size, self.device, render)

    @property
    def conditional(self) -> bool:
        return bool(self.generator.conditional)

    @property
    def run_name(self) -> str:
        """The run folder's name (checkpoints live in <run>/checkpoints/)."""
        parent = self.path.resolve().parent
        return parent.parent.name if parent.name == "checkpoints" else parent.name

    def provenance(self, command: str, seed: int, truncation: float | None) -> dict:
        return {
            "command": command, "checkpoint": str(self.path), "checkpoint_sha256": file_digest(self.path),
            "step": self.step, "seed": seed, "weights": self.weights, "truncation": truncation,
            "trained_classes": len(self.classes), "styles": None if self.styles is None else self.styles.sources,
            "style_reach": None if self.styles is None else self.style_reach,
        }

    def noise(self, n: int, rng: torch.Generator, truncation: float | None = None) -> Tensor:
        """n noise vectors; with `truncation` T, values beyond ±T are redrawn (truncated sampling)."""
        if self.styles is not None:
            if truncation is not None:
                raise InputError("--truncation and --styles do not go together: styled noise is drawn between fitted styles")
            return mixed_noise(self.styles.noise, n, rng, self.style_reach, self.generator.z_bounds)
        z = self.generator.sample_z(n, rng, self.device)
        if truncation is not None:
            if not truncation >= 0.05:
                raise InputError(f"--truncation must be at least 0.05, got {truncation}")
            outside = z.abs() > truncation
            while outside.any():
                z = torch.where(outside, self.generator.sample_z(n, rng, self.device), z)
                outside = z.abs() > truncation
        return z

    @torch.no_grad()
    def render(self, z: Tensor, labels: Tensor | None) -> np.ndarray:
        """uint8 (N, H, W) images for noise (N, z) and labels (N,) or soft labels (N, C).

        On the CPU the batch runs in slices of CPU_SLICE images, whose activations stay in
        the caches; one large batch is bound by memory traffic and measured slower
        (docs/results.md, "Generation in slices on the CPU"). Slicing changes no result
        (the generator is in eval mode, so no image depends on the others in its batch).
        """
        size = CPU_SLICE if self.device.type == "cpu" else len(z)
        parts = []
        for start in range(0, len(z), size):
            with autocast(self.device, self.dtype):
                images = self.generator(z[start : start + size], None if labels is None else labels[start : start + size])
            parts.append(model_to_pixels(images, self.generator.output_range).cpu().numpy())
        return np.concatenate(parts)

    def images(self, labels: Sequence[int] | None, n: int, seed: int = 0, batch_size: int = 256,
               truncation: float | None = None) -> Iterator[np.ndarray]:
        """Yield uint8 batches: one image per entry of `labels` (conditional) or `n` images."""
        rng = torch.Generator(self.device).manual_seed(seed)
        total = n if labels is None else len(labels)
        for start in range(0, total, batch_size):
            count = min(batch_size, total - start)
            batch_labels = None if labels is None else torch.as_tensor(labels[start : start + count], device=self.device)
            yield self.render(self.noise(count, rng, truncation), batch_labels)
