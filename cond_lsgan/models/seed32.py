"""`seed32`: the MNIST LSGAN of the reference code (PyTorch-GAN's lsgan.py), 32x32, and its conditional variant.

G: z (100, N(0,1)) -> Linear -> 128x8x8 -> [Upsample x2, Conv3 128->128, BN(eps 0.8),
LReLU 0.2] -> [Upsample x2, Conv3 128->64, BN(eps 0.8), LReLU 0.2] -> Conv3 64->1 -> tanh.
D: four blocks [Conv3 stride 2, LReLU 0.2, Dropout2d 0.25, BN(eps 0.8) except the first]
(1->16->32->64->128) -> Linear(128*2*2 -> 1), no sigmoid (the loss decides).
The odd BN eps of 0.8 is the reference code's (the positional argument of BatchNorm2d is eps);
we keep it so results and parameter counts match. Images are in [-1, 1].

With `model.conditional = true` the same label mechanism as paper28 is added: G's input
is [z, Φ_G(y)]; D concatenates the tiled Φ_D(y) before its second conv (fused) and
Φ_D(y) before the final linear layer.

The layers are the reference code's, plain; `cond_lsgan/fast` swaps in faster exact forms of the
upsample-convolution pairs and the last convolution where they are faster.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from ..data_tools_api import InputError
from .embedding import LabelConcatConv, LabelEmbedding


def init_weights(module: nn.Module) -> None:
    """The reference code's init: conv weights N(0, 0.02); BN weight N(1, 0.02), bias 0."""
    if isinstance(module, nn.Conv2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Seed32Generator(nn.Module):
    output_range = "tanh"
    z_bounds = None  # sample_z draws N(0, 1): unbounded

    def __init__(self, z_dim: int = 100, image_size: int = 32, num_classes: int = 0, embed_dim: int = 0) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.conditional = num_classes > 0
        self.embed = LabelEmbedding(num_classes, embed_dim) if self.conditional else None
        self.init_size = image_size // 4
        self.project = nn.Linear(z_dim + (embed_dim if self.conditional else 0), 128 * self.init_size**2)
        self.blocks = nn.Sequential(  # the reference code's layers, in its order, so parameter names are the reference code's
            nn.Upsample(scale_factor=2),
            nn.Conv2d(128, 128, 3, stride=1, padding=1),
            nn.BatchNorm2d(128, 0.8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(128, 64, 3, stride=1, padding=1),
            nn.BatchNorm2d(64, 0.8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(64, 1, 3, stride=1, padding=1),
            nn.Tanh(),
        )

    def sample_z(self, n: int, rng: torch.Generator | None = None, device: torch.device | str = "cpu") -> Tensor:
        return torch.randn(n, self.z_dim, generator=rng, device=device)

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
