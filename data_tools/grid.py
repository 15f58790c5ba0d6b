"""Image grids of glyphs, optionally captioned with their class text.

Used by `data-tools preview` and by training/generation for sample grids. Glyphs are
shown as stored (light ink on dark), on a mid-grey canvas so neighbouring cells stay
distinguishable. Pillow's default font has no CJK glyphs, so when captions hold
non-ASCII text and no font is given, an installed CJK face is looked up
(`fonts.find_cjk_caption_font`) rather than drawing boxes.

A caption is shown in full, never clipped: a class text of several characters or a
source name ("Greek/character01") is wrapped onto more lines, after a space, "/", "_",
"-" or "." where it can be, else between any two characters (`wrap_caption`); cells
widen where even one character is wider than the image, or where a caption would need
more than MAX_CAPTION_LINES lines. Captions longer than MAX_CAPTION_CHARS characters
(not a name but a text) end in "…", so no caption makes the grid huge.
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
CAPTION_PAD = 1  # pixels kept clear on each side of a caption line
DEFAULT_FONT_SIZE = 12
MAX_CAPTION_LINES = 4
MAX_CAPTION_CHARS = 100
BREAK_AFTER = " /_-."  # a caption is wrapped after one of these where it can be
WIDEN = 1.25  # cells widen by this factor until every caption fits MAX_CAPTION_LINES lines


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

    With `captions` (one per image) each cell gets its text in a strip beneath it,
    wrapped onto as many lines as the longest caption needs (see the module docstring);
    images sit centred in cells widened for their captions. `font_path` (and
    `font_index`, the face of a .ttc collection) picks the caption font; without one,
    non-ASCII captions get an installed CJK face if there is one (`caption_font`).
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
    image_width, cell_height = width * scale, height * scale
    cell_width, caption_height, lines = image_width, 0, {}
    if captions is not None:
        captions = [_shorten(str(caption)) for caption in captions]
        font = caption_font(captions, font_path, font_size, font_index)
        cell_width, lines = _caption_layout(captions, font, image_width)
        caption_height = _line_height(font) + (max(map(len, lines.values())) - 1) * _line_step(font)
    step_x = cell_width + GAP
    step_y = cell_height + caption_height + GAP

    grid = Image.new("L", (GAP + columns * step_x, GAP + rows * step_y), CANVAS)
    for index, image in enumerate(images):
        x = GAP + (index % columns) * step_x
        y = GAP + (index // columns) * step_y
        grid.paste(Image.fromarray(image).resize((image_width, cell_height), Image.NEAREST), (x + (cell_width - image_width) // 2, y))
        if captions is not None:
            grid.paste(_caption_strip(lines[captions[index]], font, cell_width, caption_height), (x, y + cell_height))
    return grid


def caption_font(captions: Sequence[str], font_path: str | os.PathLike | None = None, font_size: int = DEFAULT_FONT_SIZE,
                 font_index: int = 0) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The font `image_grid` draws these captions in: `font_path`, else a CJK face for non-ASCII text, else Pillow's."""
    if font_path is None and not all(str(c).isascii() for c in captions):
        face = find_cjk_caption_font()
        if face is not None:
            font_path, font_index = face.path, face.index
    return _load_font(font_path, font_size, font_index)


def wrap_caption(text: str, font, width: int) -> list[str]:
    """`text` cut into lines whose ink fits `width` pixels (a line of one character may not); joined, they are `text`.

    Lines break after the last of BREAK_AFTER that leaves a line fitting, else where
    the next character would not fit.
    """
    lines: list[str] = []
    line = ""
    for character in text:
        if line and _ink_width(font, line + character) > width:
            cut = max(line.rfind(mark) for mark in BREAK_AFTER) + 1
            if not 0 < cut < len(line) or _ink_width(font, line[cut:] + character) > width:
                cut = len(line)
            lines.append(line[:cut])
            line = line[cut:]
        line += character
    return lines + [line] if line or not lines else lines


def _caption_layout(captions: Sequence[str], font, image_width: int) -> tuple[int, dict[str, list[str]]]:
    """(cell width, lines of each distinct caption): the image's width, wider where a caption needs it."""
    distinct = list(dict.fromkeys(captions))
    widest_character = max((_ink_width(font, c) for text in distinct for c in set(text)), default=0)
    width = max(image_width, widest_character + 2 * CAPTION_PAD)
    while True:
        lines = {text: wrap_caption(text, font, width - 2 * CAPTION_PAD) for text in distinct}
        if max(map(len, lines.values())) <= MAX_CAPTION_LINES:
            return width, lines
        width = math.ceil(width * WIDEN)


def _shorten(text: str) -> str:
    text = " ".join(text.splitlines())
    return text if len(text) <= MAX_CAPTION_CHARS else text[: MAX_CAPTION_CHARS - 1] + "…"


def _ink_width(font, text: str) -> int:
    left, _, right, _ = font.getbbox(text)
    return right - left


def _load_font(font_path: str | os.PathLike | None, size: int, index: int = 0) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if font_path is None:
        return ImageFont.load_default(size=size)
    try:
        return ImageFont.truetype(str(font_path), size=size, index=index)
    except OSError as error:
        raise InputError(f"{font_path}: cannot load font ({error})") from None


def _line_step(font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> int:
    """Distance from one line of text to the next."""
    if isinstance(font, ImageFont.FreeTypeFont):
        ascent, descent = font.getmetrics()
        return ascent + descent
    return font.getbbox("Ag")[3]  # bitmap fallback when Pillow lacks FreeType


def _line_height(font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> int:
    """Height of one line of text plus a pixel above and below."""
    return _line_step(font) + 2


def _caption_strip(lines: Sequence[str], font, width: int, height: int) -> Image.Image:
    """The lines of a caption, each centred on its ink, in a strip of their own."""
    strip = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(strip)
    for number, line in enumerate(lines):
        left, _, right, _ = font.getbbox(line)
        draw.text(((width - (right - left)) // 2 - left, 1 + number * _line_step(font)), line, fill=CAPTION_INK, font=font)
    return strip


def save_png(image: Image.Image, path: str | os.PathLike) -> None:
    """Write `image` as PNG at `path`, never leaving a half-written file there."""
    with atomic_output(path) as temporary:
        try:
            image.save(temporary, format="PNG")  # the temporary name ends in .tmp, so name the format
        except OSError as error:
            raise write_error(path, error) from None
