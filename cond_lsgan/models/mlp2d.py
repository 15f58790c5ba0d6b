"""`mlp2d`: the LSGAN paper's 2-D model for the mixture-of-Gaussians experiment (Fig. 7).

G: z (256, N(0,1)) -> FC 128, tanh -> FC 128, tanh -> FC 2 (linear: a point in the plane).
D: point (2) -> FC 128, tanh -> FC 128, tanh -> FC 1 (raw score; the loss decides).
`model.width` scales the 128 hidden units. These settings are those of the unrolled-GAN
reference code for this experiment (8 modes, z 256, batch 512, the two learning rates),
which the paper follows; its layers start Glorot-uniform with zero biases, and so do ours.
(The N(0, 0.02) init of the image models leaves D almost linear here: with it neither
loss resolved a single mode in 35k steps.)

The MoG experiment trains many seeds at once: `stacked_forward` runs S models of this
shape, with their weights stacked on a leading axis, as one batched matrix product per
layer, so ten seeds cost about as many Python-level operations as one. It mirrors
`MLP2D.forward` layer for layer (a test keeps them equal).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from ..data_tools_api import InputError
from .embedding import scaled

HIDDEN = 128


class MLP2D(nn.Module):
    """Two tanh hidden layers and a linear output layer."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.Tanh(),
            nn.Linear(hidden, hidden), nn.Tanh(),
            nn.Linear(hidden, out_dim),
        )

    def linears(self) -> list[nn.Linear]:
        return [layer for layer in self.layers if isinstance(layer, nn.Linear)]


class MLP2DGenerator(MLP2D):
    output_range = "points"  # not images: model_to_pixels does not apply
    conditional = False
    z_bounds = None  # sample_z draws N(0, 1): unbounded

    def __init__(self, z_dim: int = 256, hidden: int = HIDDEN) -> None:
        super().__init__(z_dim, hidden, 2)
        self.z_dim = z_dim

    def sample_z(self, n: int, rng: torch.Generator | None = None, device: torch.device | str = "cpu") -> Tensor:
        return torch.randn(n, self.z_dim, generator=rng, device=device)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.layers(z)  # (N, 2)


class MLP2DDiscriminator(MLP2D):
    conditional = False

    def __init__(self, hidden: int = HIDDEN) -> None:
        super().__init__(2, hidden, 1)

    def forward(self, points: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.layers(points)  # (N, 1)


def stack_parameters(models: list[MLP2D]) -> list[Tensor]:
    """[W1, b1, W2, b2, W3, b3] with a leading model axis: W (S, in, out), b (S, 1, out).

    Weights are transposed so that a layer is `baddbmm(b, x, W)`; the result is a list of
    new leaf tensors (give them to an optimiser), not views of the models' parameters.
    """
    stacked = []
    for index in range(len(models[0].linears())):
        layers = [model.linears()[index] for model in models]
        stacked.append(torch.stack([layer.weight.detach().t() for layer in layers]).contiguous().requires_grad_())
        stacked.append(torch.stack([layer.bias.detach()[None] for layer in layers]).contiguous().requires_grad_())
    return stacked


def unstack_parameters(stacked: list[Tensor], index: int, model: MLP2D) -> MLP2D:
    """Copy model `index` of a stack back into `model` (for saving one seed's weights)."""
    with torch.no_grad():
        for layer, weight, bias in zip(model.linears(), stacked[0::2], stacked[1::2]):
            layer.weight.copy_(weight[index].t())
            layer.bias.copy_(bias[index, 0])
    return model


def stacked_forward(stacked: list[Tensor], x: Tensor) -> Tensor:
    """S models at once: x (S, N, in) -> (S, N, out), the same layers as `MLP2D.forward`."""
    weights, biases = stacked[0::2], stacked[1::2]
    for position, (weight, bias) in enumerate(zip(weights, biases)):
        x = torch.baddbmm(bias, x, weight)
        if position < len(weights) - 1:
            x = torch.tanh(x)
    return x


def build(model: ModelConfig, num_classes: int, image_size: int) -> tuple[nn.Module, nn.Module]:
    """Generator and discriminator for 2-D points (`num_classes` and `image_size` are unused)."""
    if model.conditional:
        raise InputError("mlp2d is the unconditional 2-D mixture-of-Gaussians model: set model.conditional = false")
    hidden = scaled(HIDDEN, model.width)
    generator, discriminator = MLP2DGenerator(model.z_dim, hidden), MLP2DDiscriminator(hidden)
    for layer in generator.linears() + discriminator.linears():
        nn.init.xavier_uniform_(layer.weight)
        nn.init.zeros_(layer.bias)
    return generator, discriminator
