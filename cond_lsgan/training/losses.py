"""GAN objectives: least squares (LSGAN, with targets a, b, c) and the regular GAN.

LSGAN (Mao et al. 2017):
    D: ½E[(D(x) - b)²] + ½E[(D(G(z)) - a)²]      G: ½E[(D(G(z)) - c)²]
with a=0, b=1, c=1 (0-1 coding, used for the Chinese characters) or a=-1, b=1, c=0
(the Pearson χ² form). The regular GAN baseline is sigmoid cross-entropy on D's raw
output, with the non-saturating generator loss -log σ(D(G(z))). `mode_seeking_term` is
an extra term of G's loss (`loss.mode_seeking`) against noise that changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import LossConfig


@dataclass(frozen=True)
class LeastSquares:
    a: float = 0.0
    b: float = 1.0
    c: float = 1.0

    def discriminator(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        return 0.5 * (real_scores - self.b).pow(2).mean() + 0.5 * (fake_scores - self.a).pow(2).mean()

    def generator(self, fake_scores: Tensor) -> Tensor:
        return 0.5 * (fake_scores - self.c).pow(2).mean()


@dataclass(frozen=True)
class CrossEntropy:
    def discriminator(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        real = F.binary_cross_entropy_with_logits(real_scores, torch.ones_like(real_scores))
        fake = F.binary_cross_entropy_with_logits(fake_scores, torch.zeros_like(fake_scores))
        return real + fake

    def generator(self, fake_scores: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(fake_scores, torch.ones_like(fake_scores))


def mode_seeking_term(fake: Tensor, z: Tensor) -> Tensor:
    """MSGAN's term (Mao et al. 2019), to be minimised by G: mean|z1 - z2| / mean|G(z1) - G(z2)|.

    The batch's first and second halves are pairs with the same labels and different
    noise; a generator that ignores its noise (one glyph per class) makes the images'
    distance small and the term large.
    """
    half = len(fake) // 2
    images = (fake[:half] - fake[half : 2 * half]).abs().flatten(1).mean(dim=1)
    noise = (z[:half] - z[half : 2 * half]).abs().flatten(1).mean(dim=1).to(images.dtype)
    return (noise / (images + 1e-5)).mean()


def make_loss(config: LossConfig) -> LeastSquares | CrossEntropy:
    if config.kind == "lsgan":
        return LeastSquares(config.a, config.b, config.c)
    return CrossEntropy()
