"""Convolutions with very few output channels, computed as one matmul and a col2im (`F.fold`).

A transposed convolution is, by definition, each input pixel's channels times the
kernel (a k x k patch of contributions per pixel: one matrix product for all pixels),
with the overlapping patches added into place (col2im, `F.fold`). A stride-1
convolution is the transposed convolution of its flipped, transposed kernel. For one
output channel (the last layer of both generators) oneDNN's direct kernels run at a few
percent of peak, while the matmul here runs near it (docs/results.md
has the figures). Both classes subclass the torch layer they replace and add no state,
so `fast.use_fast_paths` swaps them in without touching parameters or state dicts; the
tests check they compute the same function.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def _transposed_by_fold(x: Tensor, kernel: Tensor, bias: Tensor | None, stride: tuple[int, int],
                        padding: tuple[int, int], size: tuple[int, int]) -> Tensor:
    """conv_transpose2d(x, kernel (in, out, k, k), bias) with output `size`, as a matmul and a fold."""
    patches = x.flatten(2).transpose(1, 2) @ kernel.flatten(1)  # (N, H·W, out·k·k)
    out = F.fold(patches.transpose(1, 2), size, kernel.shape[2:], stride=stride, padding=padding)  # (N, out, H', W')
    return out if bias is None else out + bias.to(out.dtype).view(1, -1, 1, 1)


class FoldConvTranspose2d(nn.ConvTranspose2d):
    """nn.ConvTranspose2d (groups 1, dilation 1) computed by `_transposed_by_fold`."""

    def forward(self, x: Tensor, output_size: list[int] | None = None) -> Tensor:
        if output_size is not None:
            return super().forward(x, output_size)
        assert self.groups == 1 and self.dilation == (1, 1)
        size = tuple((n - 1) * s - 2 * p + k + extra for n, s, p, k, extra
                     in zip(x.shape[2:], self.stride, self.padding, self.kernel_size, self.output_padding))
        return _transposed_by_fold(x, self.weight, self.bias, self.stride, self.padding, size)


class FoldConv2d(nn.Conv2d):
    """nn.Conv2d (stride 1, groups 1, dilation 1, padding at most kernel - 1) computed by `_transposed_by_fold`."""

    def forward(self, x: Tensor) -> Tensor:
        assert self.groups == 1 and self.stride == (1, 1) and self.dilation == (1, 1) and self.padding_mode == "zeros"
        size = tuple(n + 2 * p - k + 1 for n, p, k in zip(x.shape[2:], self.padding, self.kernel_size))
        padding = tuple(k - 1 - p for p, k in zip(self.padding, self.kernel_size))
        kernel = self.weight.flip(2, 3).transpose(0, 1)  # (in, out, k, k)
        return _transposed_by_fold(x, kernel, self.bias, (1, 1), padding, size)
