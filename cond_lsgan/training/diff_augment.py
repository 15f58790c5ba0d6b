"""Differentiable augmentation of D's inputs (`train.augment`), for few images per class.

With 10-25 glyphs per class, D memorises the real ones and its verdict stops teaching G
anything (Zhao et al. 2020, DiffAugment; Karras et al. 2020, ADA). Augmenting every
image D sees, real and generated alike and by the same random policy, hides the
memorised pixels; because the transforms are differentiable, G's gradient passes through
them, and because D's fake batches are augmented too, G is not taught to draw the
augmentations. Only transforms that keep a character a character are offered:
    translation   shift by up to 1/8 of the image size each way, the background filling in
    cutout        a square of half the image size set to background, at a random place
never flips or rotations (they turn one character into another, or into none).

Randomness comes from a torch.Generator seeded by (train.seed, step, which batch), not from
the global RNG, so training's random stream, and with it exact resume, is unchanged.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..runtime import mixed_seed

TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def augment(images: Tensor, policy: tuple[str, ...], rng: torch.Generator, background: float) -> Tensor:
    """Apply `policy` to a batch (N, C, H, W), each image its own random draw; differentiable in `images`."""
    for name in policy:
        images = TRANSFORMS[name](images, rng, background)
    return images


def translate(images: Tensor, rng: torch.Generator, background: float) -> Tensor:
    """Shift each image by (dy, dx), |d| <= ratio · size, filling with `background`: out[y, x] = in[y - dy, x - dx]."""
    n, _, height, width = images.shape
    shift_y, shift_x = int(height * TRANSLATION_RATIO + 0.5), int(width * TRANSLATION_RATIO + 0.5)
    dy = torch.randint(-shift_y, shift_y + 1, (n, 1, 1), generator=rng, device=images.device)
    dx = torch.randint(-shift_x, shift_x + 1, (n, 1, 1), generator=rng, device=images.device)
    padded = torch.nn.functional.pad(images, (shift_x, shift_x, shift_y, shift_y), value=background)
    rows = (torch.arange(height, device=images.device).view(1, -1, 1) - dy + shift_y).expand(n, height, width)
    columns = (torch.arange(width, device=images.device).view(1, 1, -1) - dx + shift_x).expand(n, height, width)
    batch = torch.arange(n, device=images.device).view(-1, 1, 1).expand(n, height, width)
    return padded.permute(0, 2, 3, 1)[batch, rows, columns].permute(0, 3, 1, 2)  # gather: gradients flow back


def cutout(images: Tensor, rng: torch.Generator, background: float) -> Tensor:
    """Set a square of ratio · size at a random centre (it may reach over the edge) to `background`."""
    n, _, height, width = images.shape
    size_y, size_x = int(height * CUTOUT_RATIO + 0.5), int(width * CUTOUT_RATIO + 0.5)
    centre_y = torch.randint(0, height + (1 - size_y % 2), (n, 1, 1), generator=rng, device=images.device)
    centre_x = torch.randint(0, width + (1 - size_x % 2), (n, 1, 1), generator=rng, device=images.device)
    top, left = centre_y - size_y // 2, centre_x - size_x // 2
    rows = torch.arange(height, device=images.device).view(1, -1, 1)
    columns = torch.arange(width, device=images.device).view(1, 1, -1)
    inside = (rows >= top) & (rows < top + size_y) & (columns >= left) & (columns < left + size_x)  # (N, H, W)
    keep = (~inside).unsqueeze(1).to(images.dtype)  # (N, 1, H, W)
    return images * keep + background * (1.0 - keep)


TRANSFORMS = {"translation": translate, "cutout": cutout}


def batch_rng(seed: int, step: int, which: int, device: torch.device) -> torch.Generator:
    """The random stream of one augmented batch: a function of (seed, step, which), nothing else."""
    return torch.Generator(device).manual_seed(mixed_seed(seed, step) * 8 + which)
