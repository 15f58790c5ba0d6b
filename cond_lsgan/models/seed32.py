"""`seed32`: the unconditional MNIST LSGAN of the seed code (PyTorch-GAN's lsgan.py), 32x32.

G: z (100, N(0,1)) -> Linear -> 128x8x8 -> [Upsample x2, Conv3 128->128, BN(eps 0.8),
LReLU 0.2] -> [Upsample x2, Conv3 128->64, BN(eps 0.8), LReLU 0.2] -> Conv3 64->1 -> tanh.
D: four blocks [Conv3 stride 2, LReLU 0.2, Dropout2d 0.25, BN(eps 0.8) except the first]
(1->16->32->64->128) -> Linear(128*2*2 -> 1), no sigmoid (the loss decides).
The odd BN eps of 0.8 is the seed's (the positional argument of BatchNorm2d is eps);
we keep it so results and parameter counts match. Images are in [-1, 1].
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from data_tools.errors import InputError


def init_weights(module: nn.Module) -> None:
    """The seed's init: conv weights N(0, 0.02); BN weight N(1, 0.02), bias 0."""
    if isinstance(module, nn.Conv2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Seed32Generator(nn.Module):
    output_range = "tanh"
    conditional = False

    def __init__(self, z_dim: int = 100, image_size: int = 32, channels: int = 1) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.init_size = image_size // 4
        self.project = nn.Linear(z_dim, 128 * self.init_size**2)
        self.blocks = nn.Sequential(
            nn.Upsample(scale_factor=2),
            nn.Conv2d(128, 128, 3, stride=1, padding=1),
            nn.BatchNorm2d(128, 0.8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(128, 64, 3, stride=1, padding=1),
            nn.BatchNorm2d(64, 0.8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(64, channels, 3, stride=1, padding=1),
            nn.Tanh(),
        )

    def sample_z(self, n: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> Tensor:
        return torch.randn(n, self.z_dim, generator=generator, device=device)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        x = self.project(z).view(z.shape[0], 128, self.init_size, self.init_size)  # (N, 128, S/4, S/4)
        return self.blocks(x)  # (N, 1, S, S)


class Seed32Discriminator(nn.Module):
    conditional = False

    def __init__(self, image_size: int = 32, channels: int = 1) -> None:
        super().__init__()

        def block(c_in: int, c_out: int, bn: bool) -> list[nn.Module]:
            layers = [nn.Conv2d(c_in, c_out, 3, 2, 1), nn.LeakyReLU(0.2, inplace=True), nn.Dropout2d(0.25)]
            return layers + [nn.BatchNorm2d(c_out, 0.8)] if bn else layers

        self.blocks = nn.Sequential(*block(channels, 16, False), *block(16, 32, True), *block(32, 64, True), *block(64, 128, True))
        self.score = nn.Linear(128 * (image_size // 16) ** 2, 1)

    def forward(self, images: Tensor, labels: Tensor | None = None) -> Tensor:
        features = self.blocks(images)  # (N, 128, S/16, S/16)
        return self.score(features.flatten(1))  # (N, 1)


def build(z_dim: int, num_classes: int, image_size: int) -> tuple[nn.Module, nn.Module]:
    """Generator and discriminator for `image_size` (a multiple of 16); unconditional."""
    if image_size % 16:
        raise InputError(f"seed32 needs an image size that is a multiple of 16 (it is 32 for MNIST), got {image_size}")
    generator, discriminator = Seed32Generator(z_dim, image_size), Seed32Discriminator(image_size)
    generator.apply(init_weights)
    discriminator.apply(init_weights)
    return generator, discriminator
