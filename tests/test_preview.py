"""`preview_grid` with --classes and --per-class: which samples land in which cells."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from data_tools.errors import InputError
from data_tools.grid import CANVAS, GAP
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
    """The top-left pixel of each cell (scale 2), shape (rows, columns), from the grid's geometry."""
    pixels = np.asarray(grid)
    step_x = SIZE * 2 + GAP
    step_y = (pixels.shape[0] - GAP) // rows
    assert pixels.shape[1] == GAP + columns * step_x
    return np.array([[pixels[GAP + r * step_y, GAP + c * step_x] for c in range(columns)] for r in range(rows)])


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
