"""Image grids: layout, pixel placement, captions (wrapped, never clipped), atomic PNG writes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from data_tools.errors import InputError
from data_tools.grid import CANVAS, DEFAULT_FONT_SIZE, GAP, MAX_CAPTION_LINES, caption_font, image_grid, save_png, wrap_caption


def test_layout_and_pixels_without_captions():
    images = np.arange(5 * 4 * 3, dtype=np.uint8).reshape(5, 4, 3)  # 5 glyphs, H=4, W=3
    grid = np.asarray(image_grid(images, columns=3, scale=2))
    assert grid.shape == (GAP + 2 * (8 + GAP), GAP + 3 * (6 + GAP))
    # glyph 4 sits in row 1, column 1; each pixel becomes a 2x2 block
    top, left = GAP + 1 * (8 + GAP), GAP + 1 * (6 + GAP)
    np.testing.assert_array_equal(grid[top : top + 8 : 2, left : left + 6 : 2], images[4])
    np.testing.assert_array_equal(grid[top + 1 : top + 8 : 2, left + 1 : left + 6 : 2], images[4])
    assert (grid[:GAP] == CANVAS).all() and (grid[:, :GAP] == CANVAS).all()
    assert (grid[top:, GAP + 2 * (6 + GAP) :] == CANVAS).all()  # the sixth cell is empty


def test_default_columns_make_a_square():
    grid = image_grid(np.zeros((9, 5, 5), np.uint8), scale=1)
    assert grid.size == (GAP + 3 * (5 + GAP), GAP + 3 * (5 + GAP))


def test_captions_add_a_strip_and_long_ones_wrap_inside_their_cell():
    images = np.zeros((2, 10, 10), np.uint8)
    plain = image_grid(images, columns=2)
    short = image_grid(images, captions=["7", "8"], columns=2)
    assert short.width == plain.width
    strip = short.height - plain.height
    assert 10 <= strip <= 30  # one line
    pixels = np.asarray(short)
    assert pixels[GAP + 20 : GAP + 20 + strip, GAP : GAP + 20].max() > 128  # the "7" is drawn in light ink
    wrapped = image_grid(images, captions=["7", "ab cd"], columns=2)
    assert wrapped.width == plain.width and wrapped.height >= plain.height + 2 * (strip - 2)  # wrapped, not widened
    assert (np.asarray(wrapped)[:, GAP + 20 : 2 * GAP + 20] == CANVAS).all()  # the long caption stays in its cell
    widened = image_grid(images, captions=["7", "a very long caption indeed"], columns=2)  # more than 4 lines of 20 px
    step_x = (widened.width - GAP) // 2
    assert step_x > 20 + GAP and widened.height < plain.height + 5 * (strip - 2)
    assert (np.asarray(widened)[:, step_x : step_x + GAP] == CANVAS).all()


def caption_ink(grid: Image.Image, column: int, columns: int, image_height: int) -> np.ndarray:
    """The caption strip under the cell in row 0, `column`, of a grid at scale 2."""
    pixels = np.asarray(grid)
    step_x = (pixels.shape[1] - GAP) // columns
    return pixels[GAP + 2 * image_height : pixels.shape[0] - GAP, GAP + column * step_x : GAP + column * step_x + step_x - GAP]


def ink_on_a_wide_canvas(text: str, font) -> tuple[float, int]:
    """(total ink, ink width) of `text` drawn in one line where nothing can clip it."""
    canvas = Image.new("L", (40 * len(text) + 40, 60), 0)
    ImageDraw.Draw(canvas).text((20, 20), text, fill=255, font=font)
    pixels = np.asarray(canvas, dtype=np.float64)
    columns = np.flatnonzero(pixels.any(axis=0))
    return pixels.sum(), int(columns[-1] - columns[0] + 1)


LONG = "永和九年岁在癸丑暮春之初会于会稽山阴之兰亭修禊事也群贤毕至少长咸集"  # 32 characters: over 4 lines of 56 px


@pytest.mark.parametrize("captions", [["Greek/character01", "永和九年岁在癸丑暮春之初", "7"], ["7", LONG, "Greek/character01"]])
@pytest.mark.parametrize("size", [28, 4])  # 4 px: even one character is wider than the image
def test_long_captions_are_shown_in_full(size, captions):
    grid = image_grid(np.zeros((3, size, size), np.uint8), captions=captions, columns=3)
    step_x = (grid.width - GAP) // 3
    widened = step_x - GAP > 2 * size
    assert widened == (size == 4 or LONG in captions)
    font = caption_font(captions)
    strip_lines = []
    for column, text in enumerate(captions):
        ink = caption_ink(grid, column, 3, size).astype(np.float64)
        rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
        # not clipped: the ink keeps clear of the strip's edges...
        assert cols[0] > 0 and cols[-1] < ink.shape[1] - 1 and rows[0] > 0 and rows[-1] < ink.shape[0] - 1, text
        # ...and there is as much of it as drawing the caption where nothing can clip it gives
        total, width = ink_on_a_wide_canvas(text, font)
        assert ink.sum() == pytest.approx(total, rel=0.03), text
        lines = wrap_caption(text, font, step_x - GAP - 2)
        assert "".join(lines) == text and (len(lines) > 1) == (width > step_x - GAP - 2), text
        strip_lines.append(len(lines))
        if len(lines) > 1:
            assert rows[-1] - rows[0] > DEFAULT_FONT_SIZE, text  # drawn on more than one line
    assert strip_lines[captions.index("7")] == 1 and 1 < max(strip_lines) <= MAX_CAPTION_LINES


def test_captions_break_after_separators_where_they_can():
    font = caption_font(["Greek/character01"])
    width = int(font.getlength("Greek/chara"))
    assert wrap_caption("Greek/character01", font, width) == ["Greek/", "character01"][: 1] + wrap_caption("character01", font, width)
    assert wrap_caption("", font, width) == [""]
    assert image_grid(np.zeros((1, 4, 4), np.uint8), captions=["x" * 10_000]).width < 1_000  # cut short, not 10,000 x wide


def test_rejects_mismatched_captions():
    with pytest.raises(ValueError, match="2 images but 1 captions"):
        image_grid(np.zeros((2, 4, 4), np.uint8), captions=["x"])


def test_save_png_is_atomic(tmp_path):
    image = Image.fromarray(np.full((3, 5), 200, np.uint8))
    path = tmp_path / "out" / "grid.png"
    save_png(image, path)
    assert [p.name for p in path.parent.iterdir()] == ["grid.png"]
    with Image.open(path) as reread:
        assert reread.format == "PNG"
        np.testing.assert_array_equal(np.asarray(reread), np.asarray(image))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="cannot write"):
        save_png(image, blocker / "grid.png")
