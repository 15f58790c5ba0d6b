"""Image grids: layout, pixel placement, captions, atomic PNG writes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from data_tools.errors import InputError
from data_tools.grid import CANVAS, GAP, image_grid, save_png


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


def test_captions_add_a_strip_with_text_clipped_to_the_cell():
    images = np.zeros((2, 10, 10), np.uint8)
    plain = image_grid(images, columns=2)
    captioned = image_grid(images, captions=["7", "a very long caption indeed"], columns=2)
    assert captioned.width == plain.width
    strip = captioned.height - plain.height
    assert 10 <= strip <= 30
    pixels = np.asarray(captioned)
    first_caption = pixels[GAP + 20 : GAP + 20 + strip, GAP : GAP + 20]
    assert first_caption.max() > 128  # the "7" is drawn in light ink
    assert (pixels[:, GAP + 20 : 2 * GAP + 20] == CANVAS).all()  # the long caption stays in its cell


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
