"""`UpsampleConv2d`: nearest-neighbour 2x upsampling then a 3x3 convolution, as one transposed convolution.

Output row 2i reads upsampled rows 2i-1, 2i, 2i+1, which are input rows i-1, i, i:
along each axis the 3 taps w0, w1, w2 collapse onto 2 input pixels, as (w0, w1+w2)
for even outputs and (w0+w1, w2) for odd ones. Those per-phase 2x2 kernels are
exactly the 4x4 kernel T of a stride-2 transposed convolution with padding 1,
T[p] = (w2, w1+w2, w0+w1, w0)[p] along each axis, which writes the four phases
interleaved. So the same function of the same 3x3 parameters costs 16 instead of 36
multiply-adds per input pixel and channel pair (2.25x fewer), and the 4x larger
upsampled map is never built. Gradients reach the 3x3 weight through the tap sums, so
the layer trains, saves and loads as the plain pair does. It subclasses the pair's
nn.Conv2d and adds no state: `fast.use_fast_paths` swaps it in for seed32's
[nn.Upsample(scale_factor=2), nn.Conv2d(c_in, c_out, 3, 1, 1)] pairs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class UpsampleConv2d(nn.Conv2d):
    """nn.Upsample(scale_factor=2) then this 3x3 convolution (stride 1, padding 1), computed as one transposed convolution."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, 3, stride=1, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        out = F.conv_transpose2d(x, self.transposed_kernel(), None, stride=2, padding=1)  # (N, out, 2H, 2W)
        # The bias as a separate add: with the bias fused, oneDNN's bf16 transposed-convolution
        # backward spends far longer on its gradient than this add and a sum do.
        return out + self.bias.to(out.dtype).view(1, -1, 1, 1)

    def transposed_kernel(self) -> Tensor:
        """The 3x3 weight (out, in, 3, 3) as the transposed convolution's (in, out, 4, 4) kernel."""
        w = self.weight
        taps = _TAP_SUMS.to(device=w.device, dtype=w.dtype)
        kernel = (w.reshape(-1, 9) @ taps).view(w.shape[0], w.shape[1], 4, 4).transpose(0, 1)  # (in, out, 4, 4)
        if w.is_contiguous(memory_format=torch.channels_last):  # the model was put in channels_last: keep it so
            return kernel.contiguous(memory_format=torch.channels_last)
        return kernel.contiguous()


# Along one axis, transposed tap p sums the 3x3 taps (w2, w1+w2, w0+w1, w0)[p]; over both
# axes the (3·3) -> (4·4) map is the outer product, one matmul for the whole weight.
_AXIS = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])  # (4, 3)
_TAP_SUMS = torch.einsum("pk,ql->klpq", _AXIS, _AXIS).reshape(9, 16)
