"""Sampling from a checkpoint alone: grids (PNG) and generated glyph stores (HDF5).

Everything needed to rebuild the generator (its config, class table and image size)
travels in the checkpoint, so no training data is needed. The EMA weights are used by
default, in eval mode. Generated stores use the same format as real data, with one
source naming the run, so they can be inspected and merged like any other set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import nn

from data_tools.errors import InputError
from data_tools.grid import image_grid, save_png
from data_tools.store import ClassTable, StoreWriter

from .checkpoint import file_digest, load_checkpoint
from .config import config_from_dict
from .models import build_models, model_to_pixels
from .training import resolve_device

UNCONDITIONAL_CLASS = "generated"


class LoadedGenerator:
    """A generator rebuilt from a checkpoint, with what is known about where it came from."""

    def __init__(self, checkpoint: str | Path, device: str = "auto", weights: str = "ema") -> None:
        if weights not in ("ema", "raw"):
            raise InputError(f"weights must be 'ema' or 'raw', got {weights!r}")
        self.path = Path(checkpoint)
        self.device = resolve_device(device)
        state = load_checkpoint(self.path, self.device)
        self.config = config_from_dict(state["config"], origin=str(self.path))
        self.classes = ClassTable.from_dict(state["classes"])
        self.image_size = int(state["image_size"])
        self.step = int(state["step"])
        model = self.config.model
        self.generator: nn.Module = build_models(model.arch, model.z_dim, len(self.classes), self.image_size)[0]
        self.generator.load_state_dict(state["generator_ema" if weights == "ema" else "generator"])
        self.generator.to(self.device).eval().requires_grad_(False)
        self.weights = weights

    @property
    def run_name(self) -> str:
        """The run folder's name (checkpoints live in <run>/checkpoints/)."""
        parent = self.path.resolve().parent
        return parent.parent.name if parent.name == "checkpoints" else parent.name

    @torch.no_grad()
    def images(self, n: int, seed: int = 0, batch_size: int = 256) -> Iterator[np.ndarray]:
        """Yield uint8 batches (b, H, W), n images in all, reproducible from `seed`."""
        rng = torch.Generator(self.device).manual_seed(seed)
        for start in range(0, n, batch_size):
            count = min(batch_size, n - start)
            z = self.generator.sample_z(count, rng, self.device)
            output = self.generator(z, None)
            yield model_to_pixels(output, self.generator.output_range).cpu().numpy()


def sample_grid(checkpoint: str | Path, out: str | Path, n: int = 64, seed: int = 0, device: str = "auto") -> Path:
    """Write a PNG grid of `n` generated images."""
    if n < 1:
        raise InputError(f"--n must be positive, got {n}")
    loaded = LoadedGenerator(checkpoint, device)
    images = np.concatenate(list(loaded.images(n, seed)))
    save_png(image_grid(images), out)
    return Path(out)


def generate_store(checkpoint: str | Path, out: str | Path, n: int, seed: int = 0, batch_size: int = 256,
                   device: str = "auto") -> int:
    """Write `n` generated images to a glyph store at `out`; returns the count written."""
    if n < 1:
        raise InputError(f"--n must be positive, got {n}")
    loaded = LoadedGenerator(checkpoint, device)
    provenance = {
        "command": "cond-lsgan generate",
        "checkpoint": str(loaded.path),
        "checkpoint_sha256": file_digest(loaded.path),
        "step": loaded.step,
        "seed": seed,
        "weights": loaded.weights,
        "trained_classes": len(loaded.classes),
    }
    source = f"generated:{loaded.run_name}"
    with StoreWriter(out, loaded.image_size, [UNCONDITIONAL_CLASS], [source], provenance) as writer:
        for batch in loaded.images(n, seed, batch_size):
            writer.append(batch, np.zeros(len(batch), dtype=np.int32), 0)
    return n
