"""`paper28`: the LSGAN paper's conditional model for handwritten Chinese characters.

From the paper and the official code (xudonmao/LSGAN mcgan.py), 28x28, pixels in [0, 1]:
    Φ_G, Φ_D: separate linear label mappings C -> 256 (LabelEmbedding: a lookup)
    G: [z (1024, U[-1, 1]), Φ_G(y)] -> FC 7·7·128, BN, ReLU -> deconv 5x5 s2 128, BN, ReLU
       -> deconv 5x5 s2 1 -> sigmoid
    D: image -> conv 5x5 s2 256, LReLU 0.2 -> [·, tiled Φ_D(y)] -> conv 5x5 s2 320, BN, LReLU
       -> flatten, [·, Φ_D(y)] -> FC 1024, BN, LReLU -> [·, Φ_D(y)] -> FC 1
As in the official code, G's first BN normalises the FC output per feature (BatchNorm1d
over 7·7·128) and D's FC BN per unit. Options: `model.width` scales every hidden width
(0.25 gives a CPU-sized model), `model.embed_dim` the label size, `model.d_label_into_input`
also concatenates the tiled label to the image, and `model.label_concat` picks the fused
or naive computation of the tiled concatenations (same parameters either way). The
official code's first D conv has 1 + 256 = 257 outputs; we use the paper's 256.
The layers are plain torch layers; `cond_lsgan/fast` swaps in faster exact forms (G's
last deconvolution, the two wide FC layers, and for generation up1's BatchNorm folded
into up1, which is why a BatchNorm is named after the layer it follows).

Beyond the paper (all off in its recipe; conditioning.py): `model.g_norm = "conditional"`
makes G's two BatchNorms conditional on Φ_G(y); `model.d_condition = "projection"` drops
D's label concatenations for a projection head on D's last features, and "both" keeps
them and adds the head; `model.d_spectral_norm` normalises D's layers. `model.label_init
= "glyphs"` (label_init.py) sets the starting rows of `embed` in G and D after building.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from ..data_tools_api import InputError
from .conditioning import ConditionalBatchNorm, ProjectionHead, apply_spectral_norm
from .embedding import LabelConcatConv, LabelEmbedding, init_normal, scaled


class Paper28Generator(nn.Module):
    output_range = "sigmoid"
    conditional = True
    z_bounds = (-1.0, 1.0)  # sample_z draws U[-1, 1]

    def __init__(self, num_classes: int, z_dim: int = 1024, embed_dim: int = 256, image_size: int = 28, width: float = 1.0,
                 norm: str = "batch") -> None:
        super().__init__()
        self.z_dim, self.num_classes = z_dim, num_classes
        self.init_size = image_size // 4
        self.channels = scaled(128, width)
        self.embed = LabelEmbedding(num_classes, embed_dim)
        self.project = nn.Linear(z_dim + embed_dim, self.channels * self.init_size**2)
        self.up1 = nn.ConvTranspose2d(self.channels, self.channels, 5, stride=2, padding=2, output_padding=1)
        self.conditional_norm = norm == "conditional"
        if self.conditional_norm:  # not named <layer>_bn: generation must not fold a label-dependent norm into a layer
            self.project_norm = ConditionalBatchNorm(self.channels * self.init_size**2, embed_dim, spatial=False)
            self.up1_norm = ConditionalBatchNorm(self.channels, embed_dim, spatial=True)
        else:
            self.project_bn = nn.BatchNorm1d(self.channels * self.init_size**2)
            self.up1_bn = nn.BatchNorm2d(self.channels)
        self.up2 = nn.ConvTranspose2d(self.channels, 1, 5, stride=2, padding=2, output_padding=1)

    def sample_z(self, n: int, rng: torch.Generator | None = None, device: torch.device | str = "cpu") -> Tensor:
        return torch.rand(n, self.z_dim, generator=rng, device=device) * 2.0 - 1.0  # U[-1, 1]

    def forward(self, z: Tensor, labels: Tensor) -> Tensor:
        label = self.embed(labels)  # (N, E)
        h = self.project(torch.cat([z, label], dim=1))  # (N, 128w·S/4·S/4)
        h = self.project_norm(h, label) if self.conditional_norm else self.project_bn(h)
        h = torch.relu_(h).view(-1, self.channels, self.init_size, self.init_size)  # in place: one allocation fewer
        h = self.up1(h)  # (N, 128w, S/2, S/2)
        h = torch.relu_(self.up1_norm(h, label) if self.conditional_norm else self.up1_bn(h))
        return torch.sigmoid(self.up2(h))  # (N, 1, S, S)


class Paper28Discriminator(nn.Module):
    conditional = True

    def __init__(self, num_classes: int, embed_dim: int = 256, image_size: int = 28, width: float = 1.0,
                 label_into_input: bool = False, label_concat: str = "fused", condition: str = "concat") -> None:
        super().__init__()
        c1, c2, hidden = scaled(256, width), scaled(320, width), scaled(1024, width)
        self.concat = condition in ("concat", "both")  # the paper's tiled and flat label concatenations
        label_dim = embed_dim if self.concat else 0
        if self.concat:
            self.embed = LabelEmbedding(num_classes, embed_dim)
        self.label_into_input = label_into_input and self.concat
        if self.label_into_input:
            self.conv1 = LabelConcatConv(1, embed_dim, c1, 5, stride=2, padding=2, mode=label_concat)
        else:
            self.conv1 = nn.Conv2d(1, c1, 5, stride=2, padding=2)
        if self.concat:
            self.conv2 = LabelConcatConv(c1, embed_dim, c2, 5, stride=2, padding=2, mode=label_concat)
        else:
            self.conv2 = nn.Conv2d(c1, c2, 5, stride=2, padding=2)
        self.conv2_bn = nn.BatchNorm2d(c2)
        self.fc1 = nn.Linear(c2 * (image_size // 4) ** 2 + label_dim, hidden)
        self.fc1_bn = nn.BatchNorm1d(hidden)
        self.score = nn.Linear(hidden + label_dim, 1) if self.concat else None
        self.projection = ProjectionHead(num_classes, hidden) if condition in ("projection", "both") else None

    def forward(self, images: Tensor, labels: Tensor) -> Tensor:
        label = self.embed(labels) if self.concat else None  # (N, E)
        h = self.conv1(images, label) if self.label_into_input else self.conv1(images)
        h = nn.functional.leaky_relu(h, 0.2)  # (N, 256w, S/2, S/2)
        h = self.conv2(h, label) if self.concat else self.conv2(h)
        h = nn.functional.leaky_relu(self.conv2_bn(h), 0.2)  # (N, 320w, S/4, S/4)
        h = torch.cat([h.flatten(1), label], dim=1) if self.concat else h.flatten(1)
        h = nn.functional.leaky_relu(self.fc1_bn(self.fc1(h)), 0.2)  # (N, 1024w)
        if self.projection is None:
            return self.score(torch.cat([h, label], dim=1))  # (N, 1)
        score = self.projection(h, labels)
        return score + self.score(torch.cat([h, label], dim=1)) if self.concat else score


def build(model: ModelConfig, num_classes: int, image_size: int) -> tuple[nn.Module, nn.Module]:
    if image_size % 4:
        raise InputError(f"paper28 needs an image size that is a multiple of 4 (28 in the paper), got {image_size}")
    if not model.conditional:
        raise InputError("paper28 is a conditional model: set model.conditional = true")
    generator = Paper28Generator(num_classes, model.z_dim, model.embed_dim, image_size, model.width, model.g_norm)
    discriminator = Paper28Discriminator(num_classes, model.embed_dim, image_size, model.width,
                                         model.d_label_into_input, model.label_concat, model.d_condition)
    generator.apply(init_normal)
    discriminator.apply(init_normal)
    if model.d_spectral_norm:
        apply_spectral_norm(discriminator)
    return generator, discriminator
