"""`data-tools gnt`, `merge`, `split` and `preview --classes/--per-class`, run as real subprocesses."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import helpers
from data_tools.gnt import encode_gnt_record
from data_tools.store import read_store
from helpers import run_data_tools, write_tiny_store

pytestmark = pytest.mark.slow  # every test starts the CLI


def assert_one_line_error(result, *fragments: str) -> None:
    helpers.assert_one_line_error(result, "data-tools", *fragments)


def write_writer(path, chars: str, seed: int = 0) -> int:
    """A .gnt file of one record per character (bitmaps of varying size); returns the file length."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(
        encode_gnt_record(char, rng.integers(0, 256, size=(int(rng.integers(20, 40)), int(rng.integers(20, 40))), dtype=np.uint8))
        for char in chars
    )
    path.write_bytes(data)
    return len(data)


def test_gnt_end_to_end_then_split_merge_preview(tmp_path):
    write_writer(tmp_path / "hwdb" / "trn" / "1001-c.gnt", "啊阿座啊阿A", seed=1)
    write_writer(tmp_path / "hwdb" / "tst" / "1002-c.gnt", "阿啊埃", seed=2)
    out = tmp_path / "hwdb.h5"
    result = run_data_tools("gnt", tmp_path / "hwdb", "--charset", "gb2312-1", "--limit", "2", "--size", "28", "--out", out, "--gzip")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"read 2 .gnt files, 9 records; wrote 6 images (28x28, 2 classes, 2 sources) to {out}",
        "skipped 3 records of 3 characters outside charset gb2312-1 (first 2): 座 (1), A (1), 埃 (1)",
    ]
    glyphs = read_store(out)
    assert glyphs.images.shape == (6, 28, 28) and glyphs.sources == ["1001-c", "1002-c"]
    assert [glyphs.classes.text[label] for label in glyphs.labels] == ["啊", "阿", "啊", "阿", "阿", "啊"]

    result = run_data_tools("split", out, "--holdout-sources", "1002-c", "--train", tmp_path / "train.h5", "--test", tmp_path / "test.h5")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote 4 images to {tmp_path / 'train.h5'} and 2 to {tmp_path / 'test.h5'}"

    result = run_data_tools("merge", tmp_path / "test.h5", tmp_path / "train.h5", "--out", tmp_path / "merged.h5")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"merged 2 stores (6 images, 2 classes, 2 sources) into {tmp_path / 'merged.h5'}"
    merged = read_store(tmp_path / "merged.h5")
    assert merged.sources == ["1001-c", "1002-c"]  # a split merged back has its source table back
    np.testing.assert_array_equal(merged.images, np.concatenate([glyphs.images[4:], glyphs.images[:4]]))

    result = run_data_tools("split", out, "--test-fraction", "0.5", "--seed", "3", "--train", tmp_path / "a.h5", "--test", tmp_path / "b.h5")
    assert result.returncode == 0, result.stderr
    assert np.bincount(read_store(tmp_path / "b.h5").labels).tolist() == [2, 2]  # 3 of each: 1.5 -> 2

    png = tmp_path / "grid.png"
    result = run_data_tools("preview", out, "--classes", "阿,啊", "--per-class", "2", "--out", png)
    assert result.returncode == 0, result.stderr
    with Image.open(png) as grid:
        assert grid.width == 2 + 2 * (56 + 2)  # two columns of 28 px at scale 2
        assert grid.height > 2 + 2 * (56 + 2)  # two rows, with captions


def test_gnt_skip_bad_counts_and_continues(tmp_path):
    length = write_writer(tmp_path / "1001-c.gnt", "啊阿")
    path = tmp_path / "1001-c.gnt"
    path.write_bytes(path.read_bytes() + encode_gnt_record("座", np.zeros((5, 5), np.uint8))[:20])
    result = run_data_tools("gnt", path, "--size", "16", "--skip-bad", "--out", tmp_path / "out.h5")
    assert result.returncode == 0, result.stderr
    assert "wrote 2 images" in result.stdout
    assert "skipped 1 bad record (--skip-bad); 1 file cut short at a bad record" in result.stdout
    assert f"{path}: bad record at byte {length}: truncated" in result.stdout


def test_gnt_errors_are_one_line(tmp_path):
    assert_one_line_error(run_data_tools("gnt", tmp_path / "nowhere.gnt", "--size", "28", "--out", tmp_path / "o.h5"),
                          "nowhere.gnt", "no such file or folder")
    path = tmp_path / "1001-c.gnt"
    length = write_writer(path, "啊阿座")
    path.write_bytes(path.read_bytes()[:-7])
    result = run_data_tools("gnt", path, "--size", "28", "--out", tmp_path / "o.h5")
    assert_one_line_error(result, str(path), "bad record at byte", "truncated", "--skip-bad")
    offset = int(result.stderr.split("at byte ")[1].split(":")[0])
    assert 0 < offset < length - 7
    assert not (tmp_path / "o.h5").exists()


def test_merge_and_split_errors_are_one_line(tmp_path):
    write_tiny_store(tmp_path / "small.h5", size=8)
    write_tiny_store(tmp_path / "big.h5", size=10)
    assert_one_line_error(run_data_tools("merge", tmp_path / "small.h5", tmp_path / "big.h5", "--out", tmp_path / "m.h5"),
                          "big.h5 (10x10 images)", "image sizes differ")
    assert_one_line_error(run_data_tools("merge", tmp_path / "small.h5", tmp_path / "gone.h5", "--out", tmp_path / "m.h5"),
                          "gone.h5", "no such file")
    assert_one_line_error(run_data_tools("split", tmp_path / "small.h5", "--holdout-sources", "font C",
                                         "--train", tmp_path / "tr.h5", "--test", tmp_path / "te.h5"),
                          "no source 'font C'", "font A, font B")
    (tmp_path / "te.h5").mkdir()
    assert_one_line_error(run_data_tools("split", tmp_path / "small.h5", "--holdout-sources", "font B",
                                         "--train", tmp_path / "tr.h5", "--test", tmp_path / "te.h5"),
                          "cannot write", "te.h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.h5", "small.h5", "te.h5"]


def test_preview_unknown_class_is_one_line(tmp_path):
    write_tiny_store(tmp_path / "s.h5")
    assert_one_line_error(run_data_tools("preview", tmp_path / "s.h5", "--classes", "a,阿", "--out", tmp_path / "g.png"),
                          "has no class '阿'")
    assert not (tmp_path / "g.png").exists()
