"""`seed32` against the seed's own layer list (PyTorch-GAN lsgan.py), written out here plainly."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cond_lsgan.models import build_models, model_to_pixels, pixels_to_model
from data_tools.errors import InputError


def seed_generator() -> nn.ModuleList:
    return nn.ModuleList([
        nn.Linear(100, 128 * 8 * 8),
        nn.Upsample(scale_factor=2), nn.Conv2d(128, 128, 3, 1, 1), nn.BatchNorm2d(128, 0.8), nn.LeakyReLU(0.2),
        nn.Upsample(scale_factor=2), nn.Conv2d(128, 64, 3, 1, 1), nn.BatchNorm2d(64, 0.8), nn.LeakyReLU(0.2),
        nn.Conv2d(64, 1, 3, 1, 1), nn.Tanh(),
    ])


def seed_discriminator() -> nn.ModuleList:
    layers = []
    for c_in, c_out, bn in [(1, 16, False), (16, 32, True), (32, 64, True), (64, 128, True)]:
        layers += [nn.Conv2d(c_in, c_out, 3, 2, 1), nn.LeakyReLU(0.2), nn.Dropout2d(0.25)]
        layers += [nn.BatchNorm2d(c_out, 0.8)] if bn else []
    return nn.ModuleList(layers + [nn.Linear(128 * 2 * 2, 1)])


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def shapes(module: nn.Module) -> list[tuple[int, ...]]:
    return [tuple(p.shape) for p in module.parameters()]


def test_seed32_parameters_match_the_seed():
    generator, discriminator = build_models("seed32", 100, 10, 32)
    assert count(generator) == count(seed_generator()) == 1_049_729
    assert count(discriminator) == count(seed_discriminator()) == 98_113
    assert shapes(generator) == shapes(seed_generator())
    assert shapes(discriminator) == shapes(seed_discriminator())
    batchnorms = [m for m in [*generator.modules(), *discriminator.modules()] if isinstance(m, nn.BatchNorm2d)]
    assert len(batchnorms) == 5 and all(m.eps == 0.8 for m in batchnorms)


def test_seed32_computes_the_seed_function():
    """Copying our weights into the seed's layer list gives the same outputs."""
    torch.manual_seed(0)
    generator, discriminator = build_models("seed32", 100, 10, 32)
    generator.eval(), discriminator.eval()
    reference_g, reference_d = seed_generator().eval(), seed_discriminator().eval()
    for ours, theirs in ((generator, reference_g), (discriminator, reference_d)):
        for p, q in zip(ours.state_dict().values(), theirs.state_dict().values()):
            q.copy_(p)
    z = torch.randn(5, 100)
    x = reference_g[0](z).view(5, 128, 8, 8)
    for layer in reference_g[1:]:
        x = layer(x)
    images = generator(z)
    assert images.shape == (5, 1, 32, 32)
    torch.testing.assert_close(images, x)
    y = images
    for layer in reference_d[:-1]:
        y = layer(y)
    scores = discriminator(images)
    assert scores.shape == (5, 1)
    torch.testing.assert_close(scores, reference_d[-1](y.flatten(1)))


def test_seed32_init_follows_the_seed():
    torch.manual_seed(0)
    generator, _ = build_models("seed32", 100, 10, 32)
    conv = generator.blocks[1]
    bn = generator.blocks[2]
    assert abs(conv.weight.std().item() - 0.02) < 0.002
    assert abs(bn.weight.mean().item() - 1.0) < 0.01 and bn.bias.abs().max().item() == 0.0


def test_pixel_mapping_round_trip():
    pixels = torch.arange(256, dtype=torch.uint8).view(1, 16, 16)
    for output_range, low, high in (("tanh", -1.0, 1.0), ("sigmoid", 0.0, 1.0)):
        x = pixels_to_model(pixels, output_range)
        assert x.shape == (1, 1, 16, 16)
        assert x.min().item() == low and x.max().item() == high
        assert torch.equal(model_to_pixels(x, output_range), pixels)
    assert pixels_to_model(pixels, "tanh")[0, 0, 0, 1].item() == pytest.approx(1 / 127.5 - 1)  # the seed's x/127.5 - 1


def test_unknown_arch_and_bad_size():
    with pytest.raises(InputError, match="unknown model.arch 'dcgan'; choose one of: seed32"):
        build_models("dcgan", 100, 10, 32)
    with pytest.raises(InputError, match="multiple of 16"):
        build_models("seed32", 100, 10, 28)
