"""Image grids of glyphs, optionally captioned with their class text.

Used by `data-tools preview` and by training/generation for sample grids. Glyphs are
shown as stored (light ink on dark), on a mid-grey canvas so neighbouring cells stay
distinguishable. Pillow's default font has no CJK glyphs, so when captions hold
non-ASCII text and no font is given, an installed CJK face is looked up
(`fonts.find_cjk_caption_font`) rather than drawing boxes.
"""

from __future__ import annotations

import math
import os
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .atomic import atomic_output, write_error
from .errors import InputError
from .fonts import find_cjk_caption_font

GAP = 2  # pixels between cells and around the edge
CANVAS = 96  # grey between cells: neither ink (255) nor background (0)
CAPTION_INK = 255
DEFAULT_FONT_SIZE = 12


def image_grid(
    images: np.ndarray,
    captions: Sequence[str] | None = None,
    columns: int | None = None,
    scale: int = 2,
    font_path: str | os.PathLike | None = None,
    font_size: int = DEFAULT_FONT_SIZE,
    font_index: int = 0,
) -> Image.Image:
    """Tile uint8 (N, H, W) glyphs into one greyscale image, `scale` times enlarged.

    With `captions` (one per image) each cell gets its text in a strip beneath it; a
    caption wider than its cell is cut off rather than spilling onto its neighbour.
    `font_path` (and `font_index`, the face of a .ttc collection) picks the caption
    font; without one, non-ASCII captions get an installed CJK face if there is one.
    """
    images = np.asarray(images)
    if images.ndim != 3 or images.dtype != np.uint8 or images.shape[0] == 0:
        raise ValueError(f"image_grid needs uint8 (N, H, W) with N > 0, got {images.dtype} {images.shape}")
    if captions is not None and len(captions) != len(images):
        raise ValueError(f"got {len(images)} images but {len(captions)} captions")
    if scale < 1:
        raise ValueError(f"scale must be at least 1, got {scale}")
    count, height, width = images.shape
    columns = max(1, min(columns or math.ceil(math.sqrt(count)), count))
    rows = math.ceil(count / columns)
    cell_width, cell_height = width * scale, height * scale
    if captions is not None and font_path is None and not all(str(c).isascii() for c in captions):
        face = find_cjk_caption_font()
        if face is not None:
            font_path, font_index = face.path, face.index
    font = _load_font(font_path, font_size, font_index) if captions is not None else None
    caption_height = _line_height(font) if font is not None else 0
    step_x = cell_width + GAP
    step_y = cell_height + caption_height + GAP

    grid = Image.new("L", (GAP + columns * step_x, GAP + rows * step_y), CANVAS)
    for index, image in enumerate(images):
        x = GAP + (index % columns) * step_x
        y = GAP + (index // columns) * step_y
        grid.paste(Image.fromarray(image).resize((cell_width, cell_height), Image.NEAREST), (x, y))
        if captions is not None:
            grid.paste(_caption_strip(str(captions[index]), font, cell_width, caption_height), (x, y + cell_height))
    return grid


def _load_font(font_path: str | os.PathLike | None, size: int, index: int = 0) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if font_path is None:
        return ImageFont.load_default(size=size)
    try:
        return ImageFont.truetype(str(font_path), size=size, index=index)
    except OSError as error:
        raise InputError(f"{font_path}: cannot load font ({error})") from None


def _line_height(font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> int:
    """Height of one line of text plus a pixel above and below."""
    if isinstance(font, ImageFont.FreeTypeFont):
        ascent, descent = font.getmetrics()
        return ascent + descent + 2
    return font.getbbox("Ag")[3] + 2  # bitmap fallback when Pillow lacks FreeType


def _caption_strip(text: str, font, width: int, height: int) -> Image.Image:
    """`text` centred in its own strip, so long text is clipped to the cell."""
    strip = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(strip)
    text_width = draw.textlength(text, font=font)
    draw.text(((width - text_width) / 2, 1), text, fill=CAPTION_INK, font=font)
    return strip


def save_png(image: Image.Image, path: str | os.PathLike) -> None:
    """Write `image` as PNG at `path`, never leaving a half-written file there."""
    with atomic_output(path) as temporary:
        try:
            image.save(temporary, format="PNG")  # the temporary name ends in .tmp, so name the format
        except OSError as error:
            raise write_error(path, error) from None
