"""Φ's rows started from each class's own glyphs (`model.label_init = "glyphs"`).

In the paper Φ_G and Φ_D start as random N(0, 0.02) rows. With thousands of classes and
a dozen images each, G and D then learn, class by class, what each label looks like, and
nothing learnt for 唱 helps with 喝. Started instead at the principal-component
coordinates of the class's mean training glyph, row y already says what character y
looks like: characters that share radicals start near each other, and G learns one
shared map from "what the character looks like" to glyphs instead of 3,740 separate
ones. Φ stays a linear map of the one-hot label and is trained as before; only its
starting point changes, so soft labels, checkpoints and `generate` are unaffected.

The coordinates are computed in float64 on the CPU, so every rank and device starts
from the same rows, and scaled to a root-mean-square of `LABEL_RMS`, about the spread
of the U[-1, 1] noise (0.58) that G's first layer sees beside them.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data_tools_api import InputError
from .embedding import LabelEmbedding

LABEL_RMS = 0.5
MAX_SIDE = 64  # glyphs are averaged down to at most 64x64 pixels for the coordinates
CHUNK = 4096  # glyphs converted to float at a time


def glyph_label_rows(images: np.ndarray, labels: np.ndarray, num_classes: int, dim: int) -> Tensor:
    """(C, dim) rows: the top-`dim` principal-component coordinates of each class's mean glyph, RMS `LABEL_RMS`.

    `images` uint8 (N, H, W), `labels` (N,) in [0, C). Glyphs larger than `MAX_SIDE` are
    averaged down to it first (a starting point needs no more detail, and C means of
    1024x1024 pixels would not fit in memory). A class without images gets the mean of
    all glyphs; components beyond the data's rank are 0.
    """
    side = min(images.shape[1], MAX_SIDE)
    sums = torch.zeros(num_classes, side * side, dtype=torch.float64)
    for start in range(0, len(images), CHUNK):  # chunks: the float copy of a large set is never whole
        pixels = torch.from_numpy(images[start : start + CHUNK]).to(torch.float64)[:, None] / 255.0  # (n, 1, H, W)
        if images.shape[1] > side:
            pixels = F.adaptive_avg_pool2d(pixels, side)
        sums.index_add_(0, torch.from_numpy(labels[start : start + CHUNK].astype(np.int64)), pixels.flatten(1))
    counts = torch.bincount(torch.from_numpy(labels.astype(np.int64)), minlength=num_classes).to(torch.float64)[:, None]
    overall = sums.sum(0) / max(len(images), 1)
    means = torch.where(counts > 0, sums / counts.clamp(min=1), overall)  # (C, side²)
    centered = means - means.mean(0)
    _, _, directions = torch.linalg.svd(centered, full_matrices=False)  # rows: principal directions
    coordinates = centered @ directions[:dim].T  # (C, min(dim, rank))
    rows = torch.zeros(num_classes, dim, dtype=torch.float64)
    rows[:, : coordinates.shape[1]] = coordinates
    rms = rows.pow(2).mean().sqrt()
    return (rows * (LABEL_RMS / rms) if rms > 0 else rows).float()


def set_label_rows(models: list[nn.Module], rows: Tensor) -> int:
    """Copy `rows` (C, dim) into the label map Φ (`model.embed`) of each of `models` that has one; returns how many."""
    embeddings = [model.embed for model in models if isinstance(getattr(model, "embed", None), LabelEmbedding)]
    if not embeddings:
        raise InputError("model.label_init = 'glyphs' needs a conditional model with a label map Φ (model.conditional = true)")
    with torch.no_grad():
        for embedding in embeddings:
            embedding.weight.copy_(rows)
    return len(embeddings)
