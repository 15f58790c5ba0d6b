"""The label mapping Φ and the tiled-label concatenation before a convolution.

Φ(y) = W·onehot(y) + b is the paper's linear layer on a one-hot label (3,740 -> 256).
Since the input is one-hot, Φ(y) is column y of W plus the bias: a lookup, so no
(batch x classes) one-hot matrix is ever built, even for tens of thousands of classes.
Because Φ is linear, a soft label (a mix of classes, rows of weights over C) is the same
matrix product, which is what `sample --interpolate` uses.

Concatenating the tiled embedding (N, E, H, W) to a feature map before a convolution
adds, at each output position, Σ over the kernel taps that fall inside the input of
W_label[:, :, tap] · Φ(y). `LabelConcatConv` computes that directly: the label part of
the kernel times Φ(y) gives a (N, out, k·k) tap table, and a 0/1 mask of which taps are
inside the (zero-padded) input at each output position sums it into a (N, out, H', W')
bias map. With E = 256 label channels this replaces most of the convolution's work; the
"naive" mode concatenates and convolves, for reference and tests. Both modes use the
same parameters, so checkpoints are interchangeable.
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
        self._masks: dict[tuple, Tensor] = {}

    def forward(self, features: Tensor, label: Tensor) -> Tensor:
        n, _, height, width = features.shape
        if self.mode == "naive":
            tiled = label[:, :, None, None].expand(n, self.label_channels, height, width)
            return self.conv(torch.cat([features, tiled], dim=1))
        weight = self.conv.weight
        out = F.conv2d(features, weight[:, : self.feature_channels], self.conv.bias, self.stride, self.padding)
        return out + self.label_bias_map(label, height, width, out.dtype)

    def label_bias_map(self, label: Tensor, height: int, width: int, dtype: torch.dtype) -> Tensor:
        """The tiled label's contribution (N, out, H', W'), border taps included."""
        label_weight = self.conv.weight[:, self.feature_channels :]  # (out, E, k, k)
        out_channels, k = label_weight.shape[0], self.kernel_size
        taps = (label.to(dtype) @ label_weight.to(dtype).permute(1, 0, 2, 3).reshape(self.label_channels, -1))
        taps = taps.view(-1, out_channels, k * k)  # (N, out, k·k): each tap's contribution
        mask = self._inside_mask(height, width, label.device, dtype)  # (k·k, H'·W')
        out_height = (height + 2 * self.padding - k) // self.stride + 1
        out_width = (width + 2 * self.padding - k) // self.stride + 1
        return (taps @ mask).view(-1, out_channels, out_height, out_width)

    def _inside_mask(self, height: int, width: int, device: torch.device, dtype: torch.dtype) -> Tensor:
        """mask[tap, position] = 1 where that kernel tap reads inside the (unpadded) input."""
        key = (height, width, device, dtype)
        if key not in self._masks:
            ones = torch.ones(1, 1, height, width, device=device, dtype=dtype)
            self._masks[key] = F.unfold(ones, self.kernel_size, padding=self.padding, stride=self.stride)[0]
        return self._masks[key]


def init_normal(module: nn.Module) -> None:
    """The official LSGAN (DCGAN-TensorFlow) init: weights N(0, 0.02), biases 0, BN scale 1."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def scaled(channels: int, width: float) -> int:
    """Channel count times the width multiplier, at least 1."""
    return max(1, int(math.floor(channels * width + 0.5)))
