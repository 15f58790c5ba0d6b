"""Loss values against numbers worked out by hand for both LSGAN codings and the regular GAN."""

from __future__ import annotations

import math

import pytest
import torch

from cond_lsgan.config import LossConfig
from cond_lsgan.training.losses import CrossEntropy, LeastSquares, make_loss

REAL = torch.tensor([[1.0], [0.5]])
FAKE = torch.tensor([[0.0], [-0.5]])


def test_zero_one_coding():
    loss = LeastSquares(a=0.0, b=1.0, c=1.0)
    # D: ½·mean((1-1)², (0.5-1)²) + ½·mean((0-0)², (-0.5-0)²) = ½·0.125 + ½·0.125
    assert loss.discriminator(REAL, FAKE).item() == pytest.approx(0.125)
    # G: ½·mean((0-1)², (-0.5-1)²) = ½·(1 + 2.25)/2
    assert loss.generator(FAKE).item() == pytest.approx(0.8125)


def test_pearson_coding():
    loss = LeastSquares(a=-1.0, b=1.0, c=0.0)
    # D: ½·mean(0, 0.25) + ½·mean((0+1)², (-0.5+1)²) = 0.0625 + ½·(1 + 0.25)/2
    assert loss.discriminator(REAL, FAKE).item() == pytest.approx(0.375)
    # G: ½·mean(0², (-0.5)²) = ½·0.125
    assert loss.generator(FAKE).item() == pytest.approx(0.0625)


def test_regular_gan_cross_entropy():
    loss = CrossEntropy()
    softplus = lambda x: math.log1p(math.exp(x))  # -log σ(x) = softplus(-x); -log(1-σ(x)) = softplus(x)
    expected_d = (softplus(-1.0) + softplus(-0.5)) / 2 + (softplus(0.0) + softplus(-0.5)) / 2
    expected_g = (softplus(-0.0) + softplus(0.5)) / 2  # non-saturating: -log σ(D(G(z)))
    assert loss.discriminator(REAL, FAKE).item() == pytest.approx(expected_d)
    assert loss.generator(FAKE).item() == pytest.approx(expected_g)


def test_make_loss_follows_config():
    assert make_loss(LossConfig(kind="lsgan", a=-1.0, b=1.0, c=0.0)) == LeastSquares(-1.0, 1.0, 0.0)
    assert isinstance(make_loss(LossConfig(kind="bce")), CrossEntropy)
