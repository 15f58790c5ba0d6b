"""Model registry: architecture name -> builder, and the pixel mapping each model uses.

A builder takes (model config, num_classes, image_size) and returns (generator,
discriminator). A generator has `z_dim`, `output_range` ("tanh": pixels in [-1, 1];
"sigmoid": [0, 1]), `conditional`, `sample_z(n, generator, device)`, `z_bounds` (the
range sample_z draws each value from, or None when unbounded) and
`forward(z, labels)`; a discriminator has `forward(images, labels)` returning raw scores
(N, 1). Labels are class indices (N,) or, for conditional models, soft labels (N, C).
`build_models` first checks that the architecture fits the data (a model of 2-D points
for image_size 0, a model of images otherwise), so a mismatch is one line, not a shape
error deep in a forward pass.

Models are built from plain torch layers, which is what a new layer or loss needs to
know: faster exact forms are swapped in afterwards by `cond_lsgan.fast.use_fast_paths`,
which never changes parameters or state dicts.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from ..data_tools_api import InputError
from . import mlp2d, paper28, seed32

ARCHITECTURES: dict[str, Callable[[ModelConfig, int, int], tuple[nn.Module, nn.Module]]] = {
    "seed32": seed32.build,
    "paper28": paper28.build,
    "mlp2d": mlp2d.build,
}


POINT_ARCHITECTURES = ("mlp2d",)  # models of 2-D points (image_size 0); the others make images


def build_models(model: ModelConfig, num_classes: int, image_size: int) -> tuple[nn.Module, nn.Module]:
    """G and D for `image_size` x `image_size` glyphs, or for 2-D points when `image_size` is 0 (`experiment mog`)."""
    if model.arch not in ARCHITECTURES:
        raise InputError(f"unknown model.arch {model.arch!r}; choose one of: {', '.join(ARCHITECTURES)}")
    images = [name for name in ARCHITECTURES if name not in POINT_ARCHITECTURES]
    if model.arch in POINT_ARCHITECTURES and image_size:
        raise InputError(f"model.arch {model.arch!r} is a model of 2-D points (cond-lsgan experiment mog), not of "
                         f"{image_size}x{image_size} images; choose one of: {', '.join(images)}")
    if model.arch not in POINT_ARCHITECTURES and not image_size:
        raise InputError(f"model.arch {model.arch!r} makes images, not 2-D points; choose one of: {', '.join(POINT_ARCHITECTURES)}")
    return ARCHITECTURES[model.arch](model, num_classes, image_size)


def pixels_to_model(images: Tensor, output_range: str) -> Tensor:
    """uint8 (N, H, W) glyphs -> float (N, 1, H, W) in the generator's output range."""
    x = images.unsqueeze(1).float()
    return x / 127.5 - 1.0 if output_range == "tanh" else x / 255.0


def model_to_pixels(images: Tensor, output_range: str) -> Tensor:
    """Generator output (N, 1, H, W) -> uint8 (N, H, W), rounded and clipped."""
    x = images.detach().float().squeeze(1)
    x = (x + 1.0) * 127.5 if output_range == "tanh" else x * 255.0
    return x.round().clamp(0, 255).to(torch.uint8)
