"""`preview_grid` with --classes and --per-class: which samples land in which cells."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from PIL import Image, ImageDraw

from data_tools.errors import InputError
from data_tools.grid import CANVAS, GAP, caption_font
from data_tools.info import parse_class_list, preview_grid
from data_tools.store import ClassTable, StoreWriter

SIZE = 4
SHADE = {"a": 50, "b": 100, "啊": 200, "none": 150}  # every image of a class is filled with its shade


@pytest.fixture
def store(tmp_path):
    classes = ["a", "b", "啊", "none"]
    labels = [0, 2, 0, 1, 0, 2, 0, 1, 0]  # a: 5, b: 2, 啊: 2, none: 0
    images = np.stack([np.full((SIZE, SIZE), SHADE[classes[label]], np.uint8) for label in labels])
    path = tmp_path / "store.h5"
    with StoreWriter(path, SIZE, ClassTable(classes), ["s"], {}) as writer:
        writer.append(images, labels, 0)
    return path


def cells(grid, rows: int, columns: int) -> np.ndarray:
    """The top-left pixel of each cell's image (scale 2), shape (rows, columns), from the grid's geometry.

    A cell is wider than its image where a caption character is (啊 at 12 px beside 8 px
    images); the image is centred in it.
    """
    pixels = np.asarray(grid)
    step_x = (pixels.shape[1] - GAP) // columns
    step_y = (pixels.shape[0] - GAP) // rows
    assert pixels.shape[1] == GAP + columns * step_x and step_x - GAP >= SIZE * 2
    left = GAP + (step_x - GAP - SIZE * 2) // 2
    return np.array([[pixels[GAP + r * step_y, left + c * step_x] for c in range(columns)] for r in range(rows)])


def test_per_class_rows_in_the_given_order(store):
    grid = preview_grid(store, classes=["啊", "a"], per_class=3)
    np.testing.assert_array_equal(cells(grid, 2, 3), [[200, 200, CANVAS], [50, 50, 50]])  # 啊 has only two


def test_classes_without_per_class_shows_only_those(store):
    grid = preview_grid(store, classes=["b", "啊"], n=10, columns=4)
    shown = cells(grid, 1, 4).ravel()  # 4 samples of b and 啊 exist, all shown
    assert sorted(shown.tolist()) == [100, 100, 200, 200]


def test_per_class_without_classes_picks_classes_with_samples(store):
    grid = preview_grid(store, per_class=2, n=6, seed=1)  # 6 // 2 = 3 rows: a, b, 啊 (never the empty class)
    np.testing.assert_array_equal(cells(grid, 3, 2), [[50, 50], [100, 100], [200, 200]])
    grid = preview_grid(store, per_class=2, n=4, seed=1)
    assert {row[0] for row in cells(grid, 2, 2).tolist()} <= {50, 100, 200}


def test_unknown_or_empty_classes_are_errors(store):
    with pytest.raises(InputError, match="has no class '阿'"):
        preview_grid(store, classes=["a", "阿"])
    with pytest.raises(InputError, match="class 'none' has no samples"):
        preview_grid(store, classes=["none"], per_class=2)
    with pytest.raises(InputError, match="--per-class must be at least 1"):
        preview_grid(store, per_class=0)
    with pytest.raises(InputError, match="--columns does not go with --per-class"):
        preview_grid(store, per_class=2, columns=3)


def test_a_store_without_images_is_an_error(store):
    with h5py.File(store, "r+") as file:  # a crafted file: StoreWriter never writes an empty store
        for name in ("images", "labels", "source_ids"):
            file[name].resize(0, axis=0)
    for per_class in (None, 2):
        with pytest.raises(InputError, match="store.h5 holds no images to preview"):
            preview_grid(store, per_class=per_class)


def test_parse_class_list():
    assert parse_class_list("啊,阿") == ["啊", "阿"]
    assert parse_class_list(" a , bc ") == ["a", "bc"]
    with pytest.raises(InputError, match="empty name"):
        parse_class_list("a,,b")


def test_long_class_texts_are_captioned_in_full(tmp_path):
    texts = ["Greek/character01", "永和九年岁在癸丑暮春之初"]
    path = tmp_path / "long.h5"
    with StoreWriter(path, 28, ClassTable(texts), ["s"], {}) as writer:
        writer.append(np.zeros((2, 28, 28), np.uint8), [0, 1], 0)
    grid = preview_grid(path, classes=texts, per_class=1)  # one row per class
    pixels = np.asarray(grid, dtype=np.float64)
    step_y = (pixels.shape[0] - GAP) // 2
    font = caption_font(texts)
    for row, text in enumerate(texts):
        strip = pixels[GAP + row * step_y + 56 : GAP + (row + 1) * step_y - GAP, GAP : pixels.shape[1] - GAP]
        rows, columns = np.flatnonzero(strip.any(axis=1)), np.flatnonzero(strip.any(axis=0))
        assert rows[0] > 0 and rows[-1] < strip.shape[0] - 1 and columns[0] > 0 and columns[-1] < strip.shape[1] - 1, text
        wide = Image.new("L", (40 * len(text), 40), 0)
        ImageDraw.Draw(wide).text((10, 10), text, fill=255, font=font)  # where nothing can clip it
        assert strip.sum() == pytest.approx(np.asarray(wide, dtype=np.float64).sum(), rel=0.03), text
