"""Sample grids for training and `sample`: which classes to show, and a font for their names.

For thousands of classes a grid shows a fixed subset (`spread_classes`): rows of
classes spread over the class table, columns of shared noise, so one picture compares
classes and successive pictures compare steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from data_tools.grid import image_grid


def spread_classes(count: int, rows: int) -> list[int]:
    """Up to `rows` class indices spread evenly over [0, count), first and last included."""
    if count <= rows:
        return list(range(count))
    return [round(i * (count - 1) / (rows - 1)) for i in range(rows)]


def caption_font(captions: Sequence[str]) -> Path | None:
    """A CJK-capable font when a caption needs one (else None: Pillow's default font)."""
    if all(text.isascii() for text in captions):
        return None
    from data_tools.fonts import find_cjk_caption_font

    return find_cjk_caption_font()


def captioned_grid(images: np.ndarray, captions: Sequence[str] | None, columns: int | None = None):
    """`image_grid` with a caption font that can draw the captions."""
    font = caption_font(captions) if captions else None
    return image_grid(images, captions, columns=columns, font_path=font)
