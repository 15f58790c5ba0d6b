"""`seed32`: the MNIST LSGAN of the seed code (PyTorch-GAN's lsgan.py), 32x32, and its conditional variant.

G: z (100, N(0,1)) -> Linear -> 128x8x8 -> [Upsample x2, Conv3 128->128, BN(eps 0.8),
LReLU 0.2] -> [Upsample x2, Conv3 128->64, BN(eps 0.8), LReLU 0.2] -> Conv3 64->1 -> tanh.
D: four blocks [Conv3 stride 2, LReLU 0.2, Dropout2d 0.25, BN(eps 0.8) except the first]
(1->16->32->64->128) -> Linear(128*2*2 -> 1), no sigmoid (the loss decides).
The odd BN eps of 0.8 is the seed's (the positional argument of BatchNorm2d is eps);
we keep it so results and parameter counts match. Images are in [-1, 1].

With `model.conditional = true` the same label mechanism as paper28 is added: G's input
is [z, Φ_G(y)]; D concatenates the tiled Φ_D(y) before its second conv (fused) and
Φ_D(y) before the final linear layer.

Each [Upsample x2, Conv3] pair of G runs as one `UpsampleConv2d`: the same function
and the same parameters, computed as a stride-2 transposed convolution with 2.25x fewer
multiply-adds (see its docstring). The module sits where the seed's Conv2d sat, so the
parameter names (`blocks.1.weight`, ...) and state dicts are the seed's layout. The last
conv (one output channel) runs as a `FoldConv2d` (fold.py), likewise exact. With
`fast=False` every layer computes as the seed's does (the reference for the tests).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from data_tools.errors import InputError

from ..config import ModelConfig
from .embedding import LabelConcatConv, LabelEmbedding
from .fold import FoldConv2d


def init_weights(module: nn.Module) -> None:
    """The seed's init: conv weights N(0, 0.02); BN weight N(1, 0.02), bias 0."""
    if isinstance(module, nn.Conv2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class UpsampleConv2d(nn.Conv2d):
    """Nearest-neighbour 2x upsampling, then this 3x3 convolution (padding 1): the seed's
    [nn.Upsample(scale_factor=2), nn.Conv2d(c_in, c_out, 3, 1, 1)] pair as one module.

    Output row 2i reads upsampled rows 2i-1, 2i, 2i+1, which are input rows i-1, i, i:
    along each axis the 3 taps w0, w1, w2 collapse onto 2 input pixels, as (w0, w1+w2)
    for even outputs and (w0+w1, w2) for odd ones. Those per-phase 2x2 kernels are
    exactly the 4x4 kernel T of a stride-2 transposed convolution with padding 1,
    T[p] = (w2, w1+w2, w0+w1, w0)[p] along each axis, which writes the four phases
    interleaved. So `fast` computes the same function from the same parameters with
    16 instead of 36 multiply-adds per input pixel and channel pair (2.25x fewer), and
    the 4x larger upsampled map is never built. Gradients reach the 3x3 weight through
    the tap sums, so the module trains, saves and loads as the plain pair does.
    `fast = False` runs the plain pair (the reference the tests compare against).
    """

    def __init__(self, in_channels: int, out_channels: int, fast: bool = True) -> None:
        super().__init__(in_channels, out_channels, 3, stride=1, padding=1)
        self.fast = fast

    def forward(self, x: Tensor) -> Tensor:
        if not self.fast:
            return super().forward(F.interpolate(x, scale_factor=2, mode="nearest"))  # (N, out, 2H, 2W)
        out = F.conv_transpose2d(x, self.transposed_kernel(), None, stride=2, padding=1)  # (N, out, 2H, 2W)
        # The bias as a separate add: with the bias fused, oneDNN's bf16 transposed-convolution
        # backward spends ~12 ms on its gradient at the 32x32 layer; the add and a sum, ~2 ms.
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


class Seed32Generator(nn.Module):
    output_range = "tanh"

    def __init__(self, z_dim: int = 100, image_size: int = 32, num_classes: int = 0, embed_dim: int = 0,
                 fast: bool = True) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.conditional = num_classes > 0
        self.embed = LabelEmbedding(num_classes, embed_dim) if self.conditional else None
        self.init_size = image_size // 4
        self.project = nn.Linear(z_dim + (embed_dim if self.conditional else 0), 128 * self.init_size**2)
        self.blocks = nn.Sequential(  # indices as in the seed, so parameter names are the seed's
            nn.Identity(),  # the seed's nn.Upsample; UpsampleConv2d does the upsampling
            UpsampleConv2d(128, 128, fast),
            nn.BatchNorm2d(128, 0.8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Identity(),  # the seed's nn.Upsample
            UpsampleConv2d(128, 64, fast),
            nn.BatchNorm2d(64, 0.8),
            nn.LeakyReLU(0.2, inplace=True),
            FoldConv2d(64, 1, 3, stride=1, padding=1),  # nn.Conv2d's function, faster for one output channel
            nn.Tanh(),
        )
        self.blocks[8].fast = fast  # False: the last layer runs nn.Conv2d.forward itself

    def sample_z(self, n: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> Tensor:
        return torch.randn(n, self.z_dim, generator=generator, device=device)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.conditional:
            z = torch.cat([z, self.embed(labels)], dim=1)
        x = self.project(z).view(z.shape[0], 128, self.init_size, self.init_size)  # (N, 128, S/4, S/4)
        return self.blocks(x)  # (N, 1, S, S)


class Seed32Discriminator(nn.Module):
    def __init__(self, image_size: int = 32, num_classes: int = 0, embed_dim: int = 0, label_concat: str = "fused") -> None:
        super().__init__()
        self.conditional = num_classes > 0
        label_dim = embed_dim if self.conditional else 0
        self.embed = LabelEmbedding(num_classes, embed_dim) if self.conditional else None
        def after_conv() -> list[nn.Module]:
            return [nn.LeakyReLU(0.2, inplace=True), nn.Dropout2d(0.25)]

        self.block1 = nn.Sequential(nn.Conv2d(1, 16, 3, 2, 1), *after_conv())
        self.conv2 = LabelConcatConv(16, embed_dim, 32, 3, 2, 1, label_concat) if self.conditional else nn.Conv2d(16, 32, 3, 2, 1)
        self.block2 = nn.Sequential(*after_conv(), nn.BatchNorm2d(32, 0.8))
        self.blocks34 = nn.Sequential(
            nn.Conv2d(32, 64, 3, 2, 1), *after_conv(), nn.BatchNorm2d(64, 0.8),
            nn.Conv2d(64, 128, 3, 2, 1), *after_conv(), nn.BatchNorm2d(128, 0.8),
        )
        self.score = nn.Linear(128 * (image_size // 16) ** 2 + label_dim, 1)

    def forward(self, images: Tensor, labels: Tensor | None = None) -> Tensor:
        h = self.block1(images)  # (N, 16, S/2, S/2)
        if self.conditional:
            label = self.embed(labels)  # (N, E)
            h = self.block2(self.conv2(h, label))
        else:
            h = self.block2(self.conv2(h))
        h = self.blocks34(h).flatten(1)  # (N, 128 * (S/16)²)
        if self.conditional:
            h = torch.cat([h, label], dim=1)
        return self.score(h)  # (N, 1)


def build(model: ModelConfig, num_classes: int, image_size: int) -> tuple[nn.Module, nn.Module]:
    """Generator and discriminator for `image_size` (a multiple of 16)."""
    if image_size % 16:
        raise InputError(f"seed32 needs an image size that is a multiple of 16 (it is 32 for MNIST), got {image_size}")
    classes = num_classes if model.conditional else 0
    generator = Seed32Generator(model.z_dim, image_size, classes, model.embed_dim)
    discriminator = Seed32Discriminator(image_size, classes, model.embed_dim, model.label_concat)
    generator.apply(init_weights)
    discriminator.apply(init_weights)
    return generator, discriminator
