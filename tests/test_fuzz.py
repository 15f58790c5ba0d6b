"""Fuzzing the readers of untrusted files with hypothesis: the CASIA `.gnt` reader and the
glyph-store validator get random bytes and mutated copies of a valid file (bytes flipped,
set, cut off, inserted, deleted). Whatever the bytes, the only exception is the
documented one (InputError, or its subclasses BadRecord and StoreError), each file is
done within the deadline, and no example allocates more than a few megabytes.

HDF5 itself can crash or loop forever on some damaged files; the data-tools commands check
a file from outside in a child process first (`probe.probe_store`), so those come out as
InputErrors too. The store examples do the same, with the probe's time limit lowered so
such an example stays within the deadline.
"""

from __future__ import annotations

import contextlib
import tracemalloc
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from data_tools.errors import InputError
from data_tools.gnt import encode_gnt_record, import_gnt, iter_gnt_records
from data_tools.probe import probe_store
from data_tools.store import read_store, validate_store
from helpers import write_tiny_store

pytestmark = pytest.mark.slow  # hundreds of examples each

MAX_BYTES = 32 << 20  # peak Python-side allocation of one example
SETTINGS = dict(max_examples=200, deadline=timedelta(seconds=2), derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _valid_gnt() -> bytes:
    rng = np.random.default_rng(0)
    return b"".join(encode_gnt_record(c, rng.integers(0, 256, (h, w), dtype=np.uint8))
                    for c, h, w in (("啊", 12, 9), ("阿", 7, 15), ("A", 5, 5), ("埃", 16, 16)))


def _valid_store(folder: Path) -> bytes:
    path = folder / "valid.h5"
    write_tiny_store(path, count=6, size=6)
    return path.read_bytes()


@st.composite
def mutations(draw, base: bytes, hot: list[int]) -> bytes:
    """`base` with 1-4 edits, mostly at the `hot` offsets (where the structure is).

    Offsets come from a hypothesis-controlled Random: hypothesis's own integers favour
    small values, which would put nearly every edit in the first bytes of the file.
    """
    chance = draw(st.randoms(use_true_random=True))  # a seeded Random: hypothesis picks the seed
    data = bytearray(base)
    kinds = ["flip", "set"] if chance.random() < 0.7 else ["flip", "set", "cut", "insert", "delete"]  # mostly in place
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        position = min(chance.choice(hot), len(data) - 1) if hot and chance.random() < 0.8 else chance.randrange(len(data))
        kind = chance.choice(kinds)
        if kind == "flip":
            data[position] ^= 1 << chance.randrange(8)
        elif kind == "set":  # overwrite 1-4 bytes, keeping the length
            count = min(chance.randint(1, 4), len(data) - position)
            data[position:position + count] = chance.randbytes(count)
        elif kind == "cut":
            del data[position:]
        elif kind == "insert":
            data[position:position] = chance.randbytes(chance.randint(1, 16))
        else:
            del data[position:position + chance.randint(1, 16)]
    return bytes(data)


@contextlib.contextmanager
def bounded_memory():
    tracemalloc.start()
    try:
        yield
        _, peak = tracemalloc.get_traced_memory()
        assert peak < MAX_BYTES, f"an example allocated {peak / 2**20:.0f} MiB"
    finally:
        tracemalloc.stop()


def _read_gnt(path: Path, out: Path) -> None:
    """Every way the reader is used: strict, skipping bad records, headers only, and a whole import."""
    for skip_bad in (False, True):
        try:
            for record in iter_gnt_records(path, skip_bad=skip_bad):
                assert record.bitmap is not None and record.bitmap.size > 0
        except InputError:
            pass
    try:
        list(iter_gnt_records(path, skip_bad=True, read_pixels=False))
        import_gnt([path], out, size=8, classes_from_data=True, skip_bad=True)
    except InputError:  # e.g. no readable records at all
        pass


GNT = _valid_gnt()
GNT_HOT = [0, 4, 6, 8, *range(len(GNT) - 20, len(GNT))]


@settings(**SETTINGS)
@given(data=st.one_of(st.binary(max_size=2048), mutations(GNT, GNT_HOT)))
def test_gnt_reader_raises_only_input_errors(tmp_path, data):
    path, out = tmp_path / "fuzz.gnt", tmp_path / "out.h5"
    path.write_bytes(data)
    with bounded_memory():
        _read_gnt(path, out)
    assert not list(tmp_path.glob(".*.tmp"))  # a failed import leaves nothing behind


@pytest.fixture(scope="module")
def valid_store(tmp_path_factory) -> tuple[bytes, list[int]]:
    data = _valid_store(tmp_path_factory.mktemp("fuzz"))
    nonzero = np.flatnonzero(np.frombuffer(data, dtype=np.uint8))
    return data, nonzero.tolist()  # the structure (superblock, object headers, B-trees, heaps) and the tables


def _validate(path: Path) -> None:
    with bounded_memory():
        try:
            probe_store(path, seconds=1.0)  # as the commands do, before reading in this process
            summary = validate_store(path)
            glyphs = read_store(path)  # what a valid-looking file gives a reader
        except InputError as error:
            event(f"{type(error).__name__}: {str(error).partition(': ')[2][:40]}")
            return
    event("valid")
    assert len(glyphs) == summary.num_images  # a mutation in unused bytes can leave a valid store


@settings(**SETTINGS)
@given(data=st.data())
def test_store_validator_on_mutated_stores(valid_store, tmp_path, data):
    path = tmp_path / "fuzz.h5"
    path.write_bytes(data.draw(mutations(*valid_store), label="mutated store"))
    _validate(path)


@settings(**{**SETTINGS, "max_examples": 100})
@given(data=st.one_of(st.binary(max_size=4096), st.binary(max_size=4096).map(lambda tail: HDF5_SIGNATURE + tail)))
def test_store_validator_on_random_bytes(tmp_path, data):
    path = tmp_path / "fuzz.h5"
    path.write_bytes(data)
    _validate(path)
