"""Training batches from a glyph store, held in memory as uint8 tensors.

The whole set is read once into a uint8 tensor on the training device (28x28 glyphs:
3,740 classes x 100 samples is 290 MB) and batched by tensor indexing; converting to
float happens per batch on the device. No per-sample PIL or transform work runs in the
training loop. The shuffle order of epoch e is a function of (seed, e) alone, so a
resumed run sees exactly the batches the uninterrupted run would have seen. Under
data-parallel training every rank computes the same global batch and keeps its slice, so
N ranks see together what one process sees (and a checkpoint resumes on any number).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..data_tools_api import GlyphSet, InputError
from ..runtime import mixed_seed
from .distributed import Ranks, shard


class GlyphBatches:
    """Fixed-size shuffled batches; the last partial batch of each epoch is dropped.

    `batch_size` is the global batch; with `ranks` of a data-parallel run, `batch` returns
    this rank's contiguous 1/world of it.
    """

    def __init__(self, glyphs: GlyphSet, batch_size: int, seed: int, device: torch.device, ranks: Ranks = Ranks()) -> None:
        if len(glyphs) < batch_size:
            raise InputError(f"the data has {len(glyphs)} images, fewer than train.batch_size={batch_size}")
        self.images = torch.from_numpy(glyphs.images).to(device)  # uint8 (N, H, W)
        self.labels = torch.from_numpy(glyphs.labels.astype("int64")).to(device)  # (N,)
        self.batch_size = batch_size
        self.seed = seed
        self.ranks = ranks
        self.batches_per_epoch = len(glyphs) // batch_size
        self._epoch = -1
        self._order: Tensor | None = None

    def batch(self, step: int) -> tuple[Tensor, Tensor]:
        """This rank's part of the batch for optimisation step `step`: uint8 images (B / world, H, W), labels (B / world,)."""
        epoch, index = divmod(step, self.batches_per_epoch)
        if epoch != self._epoch:
            shuffle = torch.Generator().manual_seed(mixed_seed(self.seed, epoch))
            self._order = torch.randperm(len(self.labels), generator=shuffle).to(self.images.device)
            self._epoch = epoch
        picked = shard(self._order[index * self.batch_size : (index + 1) * self.batch_size], self.ranks)  # (B / world,)
        return self.images[picked], self.labels[picked]
