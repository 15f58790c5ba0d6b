"""`seed32` against the reference code's own layer list (PyTorch-GAN lsgan.py), written out here plainly."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cond_lsgan.config import ModelConfig
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
    generator, discriminator = build_models(ModelConfig(), 10, 32)
    assert count(generator) == count(seed_generator()) == 1_049_729
    assert count(discriminator) == count(seed_discriminator()) == 98_113
    assert shapes(generator) == shapes(seed_generator())
    assert shapes(discriminator) == shapes(seed_discriminator())
    batchnorms = [m for m in [*generator.modules(), *discriminator.modules()] if isinstance(m, nn.BatchNorm2d)]
    assert len(batchnorms) == 5 and all(m.eps == 0.8 for m in batchnorms)


def test_seed32_computes_the_seed_function():
    """Copying our weights into the reference code's layer list gives the same outputs."""
    torch.manual_seed(0)
    generator, discriminator = build_models(ModelConfig(), 10, 32)
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
    generator, _ = build_models(ModelConfig(), 10, 32)
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
    assert pixels_to_model(pixels, "tanh")[0, 0, 0, 1].item() == pytest.approx(1 / 127.5 - 1)  # the reference code's x/127.5 - 1


def test_unknown_arch_and_bad_size():
    with pytest.raises(InputError, match="unknown model.arch 'dcgan'; choose one of: seed32, paper28"):
        build_models(ModelConfig(arch="dcgan"), 10, 32)
    with pytest.raises(InputError, match="multiple of 16"):
        build_models(ModelConfig(), 10, 28)


def paper28_counts(classes: int, embed: int = 256, z: int = 1024) -> tuple[int, int]:
    """Parameter counts of the paper's model, layer by layer (weights + biases, BN scale + shift)."""
    phi = classes * embed + embed
    generator = (phi + (z + embed) * 7 * 7 * 128 + 7 * 7 * 128 + 2 * 7 * 7 * 128
                 + 128 * 128 * 25 + 128 + 2 * 128 + 128 * 1 * 25 + 1)
    discriminator = (phi + 1 * 256 * 25 + 256 + (256 + embed) * 320 * 25 + 320 + 2 * 320
                     + (320 * 7 * 7 + embed) * 1024 + 1024 + 2 * 1024 + (1024 + embed) + 1)
    return generator, discriminator


def test_paper28_at_3740_classes_has_the_papers_layers():
    generator, discriminator = build_models(ModelConfig(arch="paper28", conditional=True, z_dim=1024), 3740, 28)
    assert (count(generator), count(discriminator)) == paper28_counts(3740) == (9_417_857, 21_384_129)
    labels = torch.tensor([0, 3739, 5, 5])
    z = generator.sample_z(4, torch.Generator().manual_seed(0))
    assert z.shape == (4, 1024) and z.min() >= -1 and z.max() <= 1 and z.min() < -0.5  # U[-1, 1]
    images = generator(z, labels)
    assert images.shape == (4, 1, 28, 28) and images.min() >= 0 and images.max() <= 1  # sigmoid
    assert discriminator(images, labels).shape == (4, 1)
    assert discriminator.conv2.conv.weight.shape == (320, 256 + 256, 5, 5)  # conv over [h, tiled Φ_D(y)]


def test_paper28_options():
    narrow = ModelConfig(arch="paper28", conditional=True, z_dim=64, embed_dim=32, width=0.25, d_label_into_input=True)
    generator, discriminator = build_models(narrow, 50, 28)
    assert generator.project.out_features == 32 * 7 * 7 and discriminator.fc1.out_features == 256
    assert discriminator.conv1.conv.weight.shape == (64, 1 + 32, 5, 5)
    images = generator(generator.sample_z(3), torch.tensor([0, 1, 49]))
    assert discriminator(images, torch.tensor([0, 1, 49])).shape == (3, 1)
    with pytest.raises(InputError, match="paper28 is a conditional model"):
        build_models(ModelConfig(arch="paper28"), 50, 28)


def test_conditional_seed32_uses_the_label():
    torch.manual_seed(0)
    generator, discriminator = build_models(ModelConfig(conditional=True, embed_dim=16), 10, 32)
    generator.eval(), discriminator.eval()
    z = torch.randn(1, 100).repeat(2, 1)
    images = generator(z, torch.tensor([3, 4]))
    assert images.shape == (2, 1, 32, 32) and not torch.allclose(images[0], images[1])
    scores = discriminator(images[:1].repeat(2, 1, 1, 1), torch.tensor([3, 4]))
    assert scores.shape == (2, 1) and scores[0] != scores[1]
