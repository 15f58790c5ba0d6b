"""Synthetic digits: a small MNIST-like set drawn with Pillow's built-in font.

Used by `cond-lsgan demo` and the tests, so that a first run needs no downloaded or
user-supplied data. Each sample is one digit drawn at a random size, then rotated,
sheared, shifted and thickened by seeded random amounts, ink 255 on 0 like MNIST.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from .store import ClassTable, GlyphSet

DIGITS = [str(d) for d in range(10)]


def synthetic_digits(count: int, size: int = 32, seed: int = 0) -> GlyphSet:
    """`count` jittered digit images (uint8, size x size), labels cycling 0..9."""
    rng = np.random.default_rng(seed)
    images = np.zeros((count, size, size), dtype=np.uint8)
    labels = np.arange(count, dtype=np.int32) % 10
    fonts = {points: ImageFont.load_default(size=points) for points in range(int(size * 0.55), int(size * 0.8) + 1)}
    for i, label in enumerate(labels):
        font = fonts[int(rng.integers(min(fonts), max(fonts) + 1))]
        canvas = Image.new("L", (size, size), 0)
        ImageDraw.Draw(canvas).text((size / 2, size / 2), DIGITS[label], fill=255, font=font, anchor="mm")
        if rng.random() < 0.5:
            canvas = canvas.filter(ImageFilter.MaxFilter(3))  # a thicker stroke
        angle, shear = rng.uniform(-15, 15), rng.uniform(-0.25, 0.25)
        dx, dy = rng.uniform(-2, 2, size=2)
        canvas = canvas.rotate(angle, resample=Image.BILINEAR, center=(size / 2, size / 2))
        canvas = canvas.transform((size, size), Image.AFFINE, (1, shear, -shear * size / 2 + dx, 0, 1, dy), resample=Image.BILINEAR)
        images[i] = np.asarray(canvas)
    provenance = {"command": "synthetic_digits", "count": count, "size": size, "seed": seed}
    return GlyphSet(images, labels, ClassTable(DIGITS), ["synthetic digits (Pillow default font)"],
                    np.zeros(count, dtype=np.int32), provenance)
