"""Training batches from a glyph store, held in memory as uint8 tensors.

The whole set is read once into a uint8 tensor on the training device (28x28 glyphs:
3,740 classes x 100 samples is 290 MB) and batched by tensor indexing; converting to
float happens per batch on the device. No per-sample PIL or transform work runs in the
training loop. The shuffle order of epoch e is a function of (seed, e) alone, so a
resumed run sees exactly the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

import torch
from torch import Tensor

from data_tools.errors import InputError
from data_tools.store import GlyphSet


class GlyphBatches:
    """Fixed-size shuffled batches; the last partial batch of each epoch is dropped."""

    def __init__(self, glyphs: GlyphSet, batch_size: int, seed: int, device: torch.device) -> None:
        if len(glyphs) < batch_size:
            raise InputError(f"the data has {len(glyphs)} images, fewer than train.batch_size={batch_size}")
        self.images = torch.from_numpy(glyphs.images).to(device)  # uint8 (N, H, W)
        self.labels = torch.from_numpy(glyphs.labels.astype("int64")).to(device)  # (N,)
        self.batch_size = batch_size
        self.seed = seed
        self.batches_per_epoch = len(glyphs) // batch_size
        self._epoch = -1
        self._order: Tensor | None = None

    def batch(self, step: int) -> tuple[Tensor, Tensor]:
        """The batch for optimisation step `step`: uint8 images (B, H, W), labels (B,)."""
        epoch, index = divmod(step, self.batches_per_epoch)
        if epoch != self._epoch:
            shuffle = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._order = torch.randperm(len(self.labels), generator=shuffle).to(self.images.device)
            self._epoch = epoch
        picked = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        return self.images[picked], self.labels[picked]
