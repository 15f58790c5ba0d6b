"""Drawing one glyph: at a large size, cut to its ink, reduced and centred; and its augmented variants.

Each glyph is drawn `OVERSAMPLE` times larger than the output, cut to its ink box
(`Image.getbbox` of the drawn pixels: the font's own bbox includes side bearings and
line metrics), reduced with a Lanczos filter to fit `size - 2*margin` keeping its aspect
ratio, and centred on its ink box. Ink is 255 on 0, the store's convention.

Augmented variants get a random stroke-width change (blur, then re-threshold at a
shifted level: cheap soft morphology), rotation and shear at the large size, then a
random scale, aspect and shift in the fit. render.py runs these over whole faces.

A font is untrusted input that Pillow rasterises: a glyph claiming an ink box of more
than `MAX_GLYPH_EM` em a side (a font with 16 units per em and 2,048-unit outlines) is
`GlyphTooLarge` before any canvas is made, as Pillow's decompression-bomb check does for
images: drawn, it could need gigabytes.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

OVERSAMPLE = 4  # glyphs are drawn this many times larger than they are stored...
MAX_DRAW_PX = 192  # ...but at most this large (2x at least), since FreeType's anti-aliasing is already fine there

# Augmentation ranges (output pixels and degrees).
ROTATION_DEGREES = 6.0
SHEAR = 0.15
SCALE_RANGE = (0.82, 1.0)
ASPECT_LOG_RANGE = 0.12  # width / height changes by up to exp(+-0.12)
SHIFT_PX = 1.5
STROKE_RANGE = (-0.5, 1.0)  # thinner .. thicker, as a fraction of the blur radius
STROKE_BLUR = 0.5  # blur radius for the stroke change, in output pixels
MAX_GLYPH_EM = 8  # ink boxes of real glyphs are an em or two a side, of the widest calligraphic ones a few


class GlyphTooLarge(ValueError):
    """A glyph whose box is larger than MAX_GLYPH_EM em a side: a damaged or hostile font."""


def draw_size(size: int) -> int:
    """The pixel size glyphs are drawn at before they are reduced to `size`."""
    return max(2 * size, min(OVERSAMPLE * size, MAX_DRAW_PX))


def draw_glyph(font: ImageFont.FreeTypeFont, character: str) -> Image.Image | None:
    """`character` drawn at the font's size, cut to its ink box plus a border; None if no ink; GlyphTooLarge."""
    left, top, right, bottom = font.getbbox(character)
    if max(right - left, bottom - top) > MAX_GLYPH_EM * font.size:
        raise GlyphTooLarge(f"the glyph of {character} is {right - left:,}x{bottom - top:,} px at {font.size} px per em "
                            f"(more than {MAX_GLYPH_EM} em a side)")
    pad = max(2, font.size // 16)  # room for the stroke change and rotation of augmentation
    canvas = Image.new("L", (max(1, right - left) + 2 * pad, max(1, bottom - top) + 2 * pad), 0)
    ImageDraw.Draw(canvas).text((pad - left, pad - top), character, font=font, fill=255)
    box = canvas.getbbox()
    if box is None:
        return None
    return canvas.crop((box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad))


def fit_glyph(big: Image.Image, size: int, margin: int, scale: float = 1.0, aspect: float = 1.0, shift: tuple[int, int] = (0, 0)) -> bytes | None:
    """Reduce the ink of `big` to fit `size - 2*margin` (times `scale`), centred on its ink box.

    Returns the size x size image's bytes, or None if nothing is left.
    """
    box = big.getbbox()
    if box is None:
        return None
    width, height = (box[2] - box[0]) * aspect, box[3] - box[1]
    factor = (size - 2 * margin) * scale / max(width, height)
    small = big.resize((max(1, round(width * factor)), max(1, round(height * factor))), Image.LANCZOS, box=box, reducing_gap=2.0)
    ink = small.getbbox()
    if ink is None:
        return None
    x = (size - ink[0] - ink[2]) // 2
    y = (size - ink[1] - ink[3]) // 2
    # a shift never pushes ink out of the image
    x += min(max(shift[0], -(x + ink[0])), size - (x + ink[2]))
    y += min(max(shift[1], -(y + ink[1])), size - (y + ink[3]))
    out = Image.new("L", (size, size), 0)
    out.paste(small, (x, y))
    return out.tobytes()


def augment_glyph(big: Image.Image, size: int, margin: int, rng: np.random.Generator, reduction: float) -> bytes | None:
    """One random variant of a drawn glyph (stroke width, rotation, shear, scale, aspect, shift).

    `reduction` is output pixels per drawn pixel. Every random number is drawn up front,
    in a fixed order, so the variant depends only on the generator's seed.
    """
    stroke, angle, shear, scale, aspect, dx, dy = rng.uniform(
        [STROKE_RANGE[0], -ROTATION_DEGREES, -SHEAR, SCALE_RANGE[0], -ASPECT_LOG_RANGE, -SHIFT_PX, -SHIFT_PX],
        [STROKE_RANGE[1], ROTATION_DEGREES, SHEAR, SCALE_RANGE[1], ASPECT_LOG_RANGE, SHIFT_PX, SHIFT_PX],
    )
    image = _change_stroke(big, stroke, max(1, round(STROKE_BLUR / reduction)))
    image = _rotate_shear(image, angle, shear)
    return fit_glyph(image, size, margin, scale, math.exp(aspect), (round(dx), round(dy)))


def _change_stroke(image: Image.Image, amount: float, radius: int) -> Image.Image:
    """Blur, then re-threshold at a level below (thicker) or above (thinner) the middle."""
    level = 128 - 100 * amount
    table = [min(255, max(0, round((value - level) * 4 + 128))) for value in range(256)]
    changed = image.filter(ImageFilter.BoxBlur(radius)).point(table)
    return changed if changed.getbbox() is not None else image  # never thin a hairline away


def _rotate_shear(image: Image.Image, degrees: float, shear: float) -> Image.Image:
    """Rotate and shear about the centre onto a canvas big enough to hold the result."""
    theta = math.radians(degrees)
    cos, sin = math.cos(theta), math.sin(theta)
    forward = np.array([[cos, -sin], [sin, cos]]) @ np.array([[1.0, shear], [0.0, 1.0]])
    width, height = image.size
    corners = forward @ np.array([[-width, width, width, -width], [-height, -height, height, height]]) / 2
    out_width, out_height = (int(math.ceil(2 * np.abs(corners[k]).max())) + 2 for k in (0, 1))
    inverse = np.linalg.inv(forward)
    cx, cy = out_width / 2, out_height / 2
    a, b, d, e = inverse[0, 0], inverse[0, 1], inverse[1, 0], inverse[1, 1]
    data = (a, b, width / 2 - a * cx - b * cy, d, e, height / 2 - d * cx - e * cy)
    return image.transform((out_width, out_height), Image.AFFINE, data, resample=Image.BILINEAR)
