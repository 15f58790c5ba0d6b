"""The `data-tools` CLI, run as a real subprocess: outputs, exit codes, one-line errors."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from PIL import Image

from data_tools.store import read_store
import helpers
from helpers import random_digits, run_data_tools, write_idx_dir, write_tiny_store

pytestmark = pytest.mark.slow  # every test starts the CLI


def assert_one_line_error(result, *fragments: str) -> None:
    helpers.assert_one_line_error(result, "data-tools", *fragments)


@pytest.fixture
def mnist_store(tmp_path):
    """A 32x32 store imported through the CLI from 30 synthetic gzipped test digits."""
    images, labels = random_digits(30, seed=2)
    write_idx_dir(tmp_path / "idx", "test", images, labels, gz=True)
    out = tmp_path / "mnist.h5"
    result = run_data_tools("mnist", "--idx-dir", tmp_path / "idx", "--split", "test", "--size", "32", "--out", out, "--gzip")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote 30 MNIST test images (32x32) to {out}"
    return out, labels


def test_mnist_import_and_info(mnist_store):
    out, labels = mnist_store
    glyphs = read_store(out)
    assert glyphs.images.shape == (30, 32, 32)
    np.testing.assert_array_equal(glyphs.labels, labels)

    result = run_data_tools("info", out)
    assert result.returncode == 0, result.stderr
    report = result.stdout
    assert "images:       30\n" in report
    assert "image size:   32x32" in report
    assert "classes:      10: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9\n" in report
    assert "per class:    min 3, median 3, max 3" in report
    assert "30  MNIST test" in report
    assert "compression:  gzip" in report
    assert '"split": "test"' in report


def test_preview_writes_png_of_expected_size(mnist_store, tmp_path):
    out, _ = mnist_store
    png = tmp_path / "grid.png"
    result = run_data_tools("preview", out, "--out", png, "--n", "10", "--columns", "4", "--seed", "1")
    assert result.returncode == 0, result.stderr
    with Image.open(png) as grid:
        assert grid.format == "PNG" and grid.mode == "L"
        # 4 columns x 3 rows of 64x64 cells (32 px at scale 2), 2 px gaps, captions under each row
        assert grid.width == 2 + 4 * (64 + 2)
        caption = (grid.height - 2 - 3 * (64 + 2)) / 3
        assert caption == int(caption) and 10 <= caption <= 30
    again = tmp_path / "again.png"
    run_data_tools("preview", out, "--out", again, "--n", "10", "--columns", "4", "--seed", "1")
    assert png.read_bytes() == again.read_bytes()  # the seed picks the samples


def test_missing_idx_dir(tmp_path):
    result = run_data_tools("mnist", "--idx-dir", tmp_path / "nowhere", "--split", "train", "--size", "28", "--out", tmp_path / "o.h5")
    assert_one_line_error(result, "nowhere", "no such folder")
    assert not (tmp_path / "o.h5").exists()


def test_corrupt_idx(tmp_path):
    images, labels = random_digits(5)
    images_path, _ = write_idx_dir(tmp_path, "train", images, labels)
    images_path.write_bytes(images_path.read_bytes()[:100])
    result = run_data_tools("mnist", "--idx-dir", tmp_path, "--split", "train", "--size", "28", "--out", tmp_path / "o.h5")
    assert_one_line_error(result, "train-images-idx3-ubyte", "truncated")
    assert not (tmp_path / "o.h5").exists()


def test_info_on_non_hdf5(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("hello\n")
    assert_one_line_error(run_data_tools("info", path), "notes.h5", "not an HDF5 file")


def test_info_on_newer_store(tmp_path):
    path = tmp_path / "future.h5"
    write_tiny_store(path)
    with h5py.File(path, "r+") as file:
        file.attrs["version"] = 7
    assert_one_line_error(run_data_tools("info", path), "future.h5", "version 7 is newer")


def test_usage_error_exits_2(tmp_path):
    result = run_data_tools("mnist", "--split", "train", "--size", "28", "--out", tmp_path / "o.h5")
    assert result.returncode == 2
    assert "one of the arguments --idx-dir --download is required" in result.stderr
