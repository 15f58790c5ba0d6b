"""The label mapping Φ and the tiled-label concatenation before a convolution.

Φ(y) = W·onehot(y) + b is the paper's linear layer on a one-hot label (3,740 -> 256).
Since the input is one-hot, Φ(y) is column y of W plus the bias: a lookup, so no
(batch x classes) one-hot matrix is ever built, even for tens of thousands of classes.
Because Φ is linear, a soft label (a mix of classes, rows of weights over C) is the same
matrix product, which is what `sample --interpolate` uses.

Concatenating the tiled embedding (N, E, H, W) to a feature map before a convolution
adds, at each output position, Σ over the kernel taps that fall inside the input of
W_label[:, :, tap] · Φ(y). `LabelConcatConv` computes that directly. Which taps fall
inside depends only on how near a position is to the border (zero padding), so output
positions share a few patterns (9 for a 5x5 stride-2 conv on 14x14): the label part of
the kernel is summed per pattern, multiplied by Φ(y) into a (N, out, patterns) table,
and spread to the (N, out, H', W') bias map. With E = 256 label channels this replaces
most of the convolution's work; the "naive" mode concatenates and convolves, for
reference and tests. Both modes use the same parameters, so checkpoints are
interchangeable.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LabelEmbedding(nn.Module):
    """Φ: labels (N,) int or soft labels (N, C) float -> (N, dim).

    `weight` is stored (C, dim), i.e. nn.Linear(C, dim).weight transposed, so that a
    lookup is a row gather.
    """

    def __init__(self, num_classes: int, dim: int) -> None:
        super().__init__()
        self.num_classes, self.dim = num_classes, dim
        self.weight = nn.Parameter(torch.empty(num_classes, dim))
        self.bias = nn.Parameter(torch.empty(dim))
        nn.init.normal_(self.weight, 0.0, 0.02)
        nn.init.zeros_(self.bias)

    def forward(self, labels: Tensor) -> Tensor:
        if labels.is_floating_point():  # soft labels (N, C): the linear layer itself
            return labels @ self.weight + self.bias
        return F.embedding(labels, self.weight) + self.bias  # (N, dim)


def soft_labels(first: int, second: int, weights: Tensor, num_classes: int) -> Tensor:
    """Rows (1 - w)·onehot(first) + w·onehot(second), for w in `weights`: (len(weights), C)."""
    mix = torch.zeros(len(weights), num_classes, device=weights.device)
    mix[:, first] = 1.0 - weights
    mix[:, second] += weights
    return mix


class LabelConcatConv(nn.Module):
    """Conv2d over [features (N, C, H, W), tiled label (N, E) -> (N, E, H, W)].

    One kernel of C + E input channels, as the paper's concatenation has; `mode`
    chooses how the label part is computed ("fused": a bias map; "naive": convolving
    the tiled channels).
    """

    def __init__(self, feature_channels: int, label_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1, padding: int = 0, mode: str = "fused") -> None:
        super().__init__()
        if mode not in ("fused", "naive"):
            raise ValueError(f"mode must be 'fused' or 'naive', got {mode!r}")
        self.feature_channels, self.label_channels = feature_channels, label_channels
        self.kernel_size, self.stride, self.padding, self.mode = kernel_size, stride, padding, mode
        self.conv = nn.Conv2d(feature_channels + label_channels, out_channels, kernel_size, stride, padding)
        self._patterns: dict[tuple, tuple[Tensor, Tensor]] = {}

    def forward(self, features: Tensor, label: Tensor) -> Tensor:
        n, _, height, width = features.shape
        if self.mode == "naive":
            tiled = label[:, :, None, None].expand(n, self.label_channels, height, width)
            return self.conv(torch.cat([features, tiled], dim=1))
        # One split, not two slices: its backward writes both halves of the weight's
        # gradient into one tensor, where each slice's backward zero-fills a full-size one.
        feature_weight, label_weight = self.conv.weight.split([self.feature_channels, self.label_channels], dim=1)
        out = F.conv2d(features, feature_weight, self.conv.bias, self.stride, self.padding)
        return out + self.label_bias_map(label, height, width, out.dtype, label_weight)

    def label_bias_map(self, label: Tensor, height: int, width: int, dtype: torch.dtype,
                       label_weight: Tensor | None = None) -> Tensor:
        """The tiled label's contribution (N, out, H', W'), border taps included.

        `label_weight` is the label part (out, E, k, k) of the kernel, if already split off.
        """
        if label_weight is None:
            label_weight = self.conv.weight[:, self.feature_channels :]
        tap_sums, spread = self._border_patterns(height, width, label.device, dtype)  # (k·k, R), (R, H'·W')
        out_channels, k = label_weight.shape[0], self.kernel_size
        # Sum the kernel's taps for each border pattern first (9 patterns instead of 25 taps
        # at 14 -> 7), so the one large product, with Φ(y), is that much smaller.
        summed = label_weight.to(dtype).reshape(out_channels, self.label_channels, k * k) @ tap_sums  # (out, E, R)
        per_pattern = label.to(dtype) @ summed.transpose(0, 1).reshape(self.label_channels, -1)  # (N, out·R)
        out_height = (height + 2 * self.padding - k) // self.stride + 1
        out_width = (width + 2 * self.padding - k) // self.stride + 1
        return (per_pattern.view(-1, tap_sums.shape[1]) @ spread).view(-1, out_channels, out_height, out_width)

    def _border_patterns(self, height: int, width: int, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """Which kernel taps read inside the (unpadded) input, grouped into the few distinct patterns.

        Returns `tap_sums` (k·k, R), 1 where a tap belongs to pattern r, and `spread`
        (R, H'·W'), 1 where an output position has pattern r. Zero padding makes only the
        first and last few rows and columns differ, so R (rows x columns patterns) is small.
        """
        key = (height, width, device, dtype)
        if key not in self._patterns:
            (rows, row_of), (columns, column_of) = self._axis_patterns(height), self._axis_patterns(width)
            tap_sums = torch.kron(rows, columns).T  # (k·k, P·Q)
            spread = torch.kron(row_of, column_of).T  # (P·Q, H'·W')
            self._patterns[key] = (tap_sums.to(device, dtype), spread.to(device, dtype))
        return self._patterns[key]

    def _axis_patterns(self, size: int) -> tuple[Tensor, Tensor]:
        """Along one axis: the distinct 0/1 patterns of taps inside the input (P, k), and each output position's pattern, one-hot (out, P)."""
        k = self.kernel_size
        positions = (size + 2 * self.padding - k) // self.stride + 1
        read = torch.arange(positions)[:, None] * self.stride - self.padding + torch.arange(k)  # (out, k): the input index each tap reads
        patterns, which = torch.unique(((read >= 0) & (read < size)).float(), dim=0, return_inverse=True)
        return patterns, F.one_hot(which, len(patterns)).float()


def init_normal(module: nn.Module) -> None:
    """The official LSGAN (DCGAN-TensorFlow) init: weights N(0, 0.02), biases 0, BN scale 1."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)) and module.affine:
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def scaled(channels: int, width: float) -> int:
    """Channel count times the width multiplier, at least 1."""
    return max(1, int(math.floor(channels * width + 0.5)))
