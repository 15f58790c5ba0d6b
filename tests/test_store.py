"""The glyph store: round trips, sample access, validation messages, atomic writes, the child probe."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

from data_tools.errors import InputError
from data_tools.probe import ProbeTimeout, probe_store
from data_tools.store import (ClassTable, StoreError, StoreWriter, iter_batches, read_samples, read_store,
                              validate_store)
from helpers import REPO_ROOT, write_tiny_store


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_round_trip_with_several_batches(tmp_path, compression):
    path = tmp_path / "glyphs.h5"
    rng = np.random.default_rng(1)
    batches = [rng.integers(0, 256, size=(n, 6, 6), dtype=np.uint8) for n in (5, 1, 7)]
    labels = [rng.integers(0, 4, size=len(b)) for b in batches]
    classes = ClassTable(["0", "啊", "ab", "z"])
    with StoreWriter(path, 6, classes, ["font A"], {"seed": 3, "note": "中文"}, compression=compression) as writer:
        writer.append(batches[0], labels[0], 0)
        second = writer.add_source("font B")
        writer.append(batches[1], labels[1], second)
        writer.append(batches[2], labels[2], [0, 1, 0, 1, 0, 1, 0])

    glyphs = read_store(path)
    np.testing.assert_array_equal(glyphs.images, np.concatenate(batches))
    np.testing.assert_array_equal(glyphs.labels, np.concatenate(labels))
    np.testing.assert_array_equal(glyphs.source_ids, [0] * 5 + [1] + [0, 1, 0, 1, 0, 1, 0])
    assert glyphs.labels.dtype == np.int32
    assert glyphs.classes.text == ["0", "啊", "ab", "z"]
    assert glyphs.classes.codepoint == [ord("0"), ord("啊"), -1, ord("z")]
    assert glyphs.sources == ["font A", "font B"]
    assert glyphs.provenance == {"seed": 3, "note": "中文"}
    assert glyphs.image_size == 6 and len(glyphs) == 13
    assert validate_store(path).compression == compression


def test_read_samples_reads_the_chosen_samples_in_the_order_given(tmp_path):
    path = tmp_path / "glyphs.h5"
    images, labels = write_tiny_store(path, count=9)
    chosen = [4, 0, 8, 4]
    got_images, got_labels = read_samples(path, chosen)
    np.testing.assert_array_equal(got_images, images[chosen])
    np.testing.assert_array_equal(got_labels, labels[chosen])
    assert read_samples(path, [])[0].shape == (0, *images.shape[1:])
    with pytest.raises(InputError, match=r"sample index 9 is out of range \[0, 9\)"):
        read_samples(path, [1, 9])


def test_missing_file(tmp_path):
    with pytest.raises(StoreError, match="no such file"):
        read_store(tmp_path / "absent.h5")


def test_non_hdf5_bytes(tmp_path):
    path = tmp_path / "fake.h5"
    path.write_bytes(b"this is not HDF5 at all" * 10)
    with pytest.raises(InputError, match="not an HDF5 file"):
        validate_store(path)


def test_hdf5_without_format_attribute(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as file:
        file["images"] = np.zeros((2, 4, 4), np.uint8)
    with pytest.raises(StoreError, match="not a glyph store"):
        read_samples(path, [0])


def test_newer_version(tmp_path):
    path = tmp_path / "glyphs.h5"
    write_tiny_store(path)
    with h5py.File(path, "r+") as file:
        file.attrs["version"] = 2
    with pytest.raises(StoreError, match="version 2 is newer"):
        read_store(path)


def test_label_out_of_range_in_file(tmp_path):
    path = tmp_path / "glyphs.h5"
    write_tiny_store(path, count=12)
    with h5py.File(path, "r+") as file:
        file["labels"][7] = 3  # three classes: valid labels are 0..2
    with pytest.raises(StoreError, match=r"label 3 is out of range \[0, 3\) at sample 7"):
        validate_store(path)


def test_class_and_codepoint_lengths_differ(tmp_path):
    path = tmp_path / "glyphs.h5"
    write_tiny_store(path)
    with h5py.File(path, "r+") as file:
        del file["classes/codepoint"]
        file["classes/codepoint"] = np.array([97, 98], np.int32)
    with pytest.raises(StoreError, match="glyphs.h5: class table has 3 names but 2 code points"):
        read_store(path)


def test_writer_rejects_bad_batches(tmp_path):
    with StoreWriter(tmp_path / "x.h5", 4, ["a", "b"]) as writer:
        with pytest.raises(InputError, match=r"label 2 is out of range \[0, 2\)"):
            writer.append(np.zeros((1, 4, 4), np.uint8), [2], 0)
        with pytest.raises(InputError, match=r"shape \(n, 4, 4\)"):
            writer.append(np.zeros((1, 5, 5), np.uint8), [0], 0)
        writer.add_source("font")
        writer.append(np.zeros((1, 4, 4), np.uint8), [1], 0)
    assert read_store(tmp_path / "x.h5").labels.tolist() == [1]


def test_failed_write_keeps_old_file_and_leaves_no_temporaries(tmp_path):
    path = tmp_path / "glyphs.h5"
    images, labels = write_tiny_store(path)
    with pytest.raises(RuntimeError, match="boom"):
        with StoreWriter(path, 8, ["x"], ["font"]) as writer:
            writer.append(np.full((3, 8, 8), 255, np.uint8), [0, 0, 0], 0)
            raise RuntimeError("boom")
    assert [p.name for p in tmp_path.iterdir()] == ["glyphs.h5"]
    glyphs = read_store(path)
    np.testing.assert_array_equal(glyphs.images, images)
    np.testing.assert_array_equal(glyphs.labels, labels)


def test_empty_write_is_an_error_and_leaves_nothing(tmp_path):
    with pytest.raises(InputError, match="no images"):
        with StoreWriter(tmp_path / "empty.h5", 8, ["x"], ["font"]):
            pass
    assert list(tmp_path.iterdir()) == []


def test_class_table_rejects_duplicates():
    with pytest.raises(StoreError, match="repeated: a, 啊"):
        ClassTable(["a", "啊", "b", "a", "啊"])


def test_class_table_index():
    table = ClassTable(["0", "1", "啊"])
    assert table.index("啊") == 2
    with pytest.raises(InputError, match="'x' is not in the class table"):
        table.index("x")


def test_written_files_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        write_tiny_store(tmp_path / "glyphs.h5")
    finally:
        os.umask(old)
    assert (tmp_path / "glyphs.h5").stat().st_mode & 0o777 == 0o644


def test_class_table_accepts_numpy_code_points():
    table = ClassTable(["a", "啊"], codepoint=np.array([97, 21834], dtype=np.int32))
    assert table.codepoint == [97, 21834] and all(type(c) is int for c in table.codepoint)
    assert ClassTable(["ab", "c"]).codepoint == [-1, 99]


@pytest.mark.parametrize("batch", [1, 5, 12, 100])
def test_iter_batches_reads_the_store_in_order(tmp_path, batch):
    images, labels = write_tiny_store(tmp_path / "glyphs.h5", count=12)
    parts = list(iter_batches(tmp_path / "glyphs.h5", batch))
    assert len(parts) == -(-12 // batch) and all(len(p[0]) <= batch for p in parts)
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), images)
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), labels)
    np.testing.assert_array_equal(np.concatenate([p[2] for p in parts]), np.arange(12) % 2)


def test_readers_do_not_fork(tmp_path):
    """The readers open the file in this process: a training process that holds threads never forks.

    Forks are counted by an at-fork hook in a fresh interpreter; the probe, which does fork,
    shows that the hook sees them.
    """
    path = tmp_path / "glyphs.h5"
    write_tiny_store(path, count=9)
    script = textwrap.dedent("""
        import os, sys
        forks = []
        os.register_at_fork(before=lambda: forks.append(1))
        from data_tools.probe import probe_store
        from data_tools.store import iter_batches, read_labels, read_samples, read_store, validate_store
        path = sys.argv[1]
        read_store(path), validate_store(path), read_labels(path), read_samples(path, [3]), list(iter_batches(path, 4))
        print(len(forks))
        probe_store(path)
        print(len(forks))
    """)
    result = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, cwd=REPO_ROOT,
                            timeout=120, check=True)
    assert result.stdout.split() == ["0", "1"]


def test_probe_store_returns_the_summary_validate_store_gives(tmp_path):
    path = tmp_path / "glyphs.h5"
    write_tiny_store(path, count=9)
    assert probe_store(path) == validate_store(path)


def test_probe_store_reports_an_invalid_file_as_the_store_error_it_is(tmp_path):
    path = tmp_path / "glyphs.h5"
    write_tiny_store(path, count=12)
    with h5py.File(path, "r+") as file:
        file["labels"][7] = 3
    with pytest.raises(StoreError, match=r"glyphs.h5: label 3 is out of range \[0, 3\) at sample 7") as caught:
        probe_store(path)
    assert not isinstance(caught.value, ProbeTimeout)


# Runs probe_store in a fresh interpreter whose forked children first do `sys.argv[2]`
# (at-fork hooks cannot be removed, so not in the test process).
_PROBE_WITH_CHILD_HOOK = textwrap.dedent("""
    import os, signal, sys, time
    from data_tools.probe import probe_store
    from data_tools.errors import InputError
    os.register_at_fork(after_in_child=lambda: exec(sys.argv[2]))
    started = time.monotonic()
    try:
        probe_store(sys.argv[1], seconds=1.0)
    except InputError as error:
        print(type(error).__name__, time.monotonic() - started, error, sep="|")
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the probe runs in a child on Linux only")
@pytest.mark.parametrize("child, kind, message", [
    ("time.sleep(60)", "ProbeTimeout", "did not open within 1 s; the file may be damaged or on a stalled file system"),
    ("os.kill(os.getpid(), signal.SIGKILL)", "StoreError", "damaged HDF5 file (the HDF5 library crashed reading it: signal 9)"),
])
def test_probe_store_tells_a_hung_child_from_a_crashed_one(tmp_path, child, kind, message):
    """A child that hangs is killed after the time limit and reported as such, not as a damaged file."""
    path = tmp_path / "glyphs.h5"
    write_tiny_store(path)
    result = subprocess.run([sys.executable, "-c", _PROBE_WITH_CHILD_HOOK, str(path), child], capture_output=True,
                            text=True, cwd=REPO_ROOT, timeout=30, check=True)
    got_kind, seconds, got_message = result.stdout.strip().split("|")
    assert (got_kind, got_message) == (kind, f"{path}: {message}")
    assert (float(seconds) >= 1.0) == (kind == "ProbeTimeout")  # the hung child was given its full time
    assert float(seconds) < 20
