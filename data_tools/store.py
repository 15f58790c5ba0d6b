"""The glyph store: the one HDF5 format every tool in this project reads and writes.

A store holds one set of labelled character images. Layout (version 1):

    attrs  format      str    "cond-lsgan-glyphs"
           version     int    1
           image_size  int    H = W
           ink         str    "light-on-dark": ink 255 on background 0 (MNIST convention)
           provenance  str    JSON object: what made the file (command, fonts, seed, ...)
           traditional_of str JSON object, optional (`render --with-traditional`): {class text of a
                              traditional form: [class texts of its simplified characters]}, e.g.
                              {"會": ["会"]}; absent in stores without such classes, older ones too
    images             uint8 (N, H, W)  one sample per chunk, optional gzip
    labels             int32 (N,)       class index in [0, C)
    classes/text       UTF-8 str (C,)   class names, e.g. "啊", "0", "generated"
    classes/codepoint  int32 (C,)       Unicode code point, or -1 if the name is not one character
    sources/name       UTF-8 str (S,)   font face, writer id, "generated:<run>", ...
    source_ids         int32 (N,)       index into sources/name

Write with `StoreWriter` (streams appended batches, so a large set never has to sit in
memory; writes to a temporary file and renames it into place on success). Read with
`read_store` (the whole set into memory, the usual case), `iter_batches` (in order,
one batch in memory at a time), `read_labels` (labels and sources only) or
`read_samples` (chosen samples only). `validate_store` checks a file and returns a
summary; every reader calls it, and every problem is an `InputError`. The checks live in
store_check.py, the constants and in-memory types (`ClassTable`, `GlyphSet`) in
store_format.py; this module re-exports them.

Files are untrusted input. A dataset cannot claim more data than its file holds, so a
damaged shape never turns into a huge allocation, and `image_size` must be 1 to
MAX_IMAGE_SIZE on read as on write (a store of 0x0 images would pass every other check
and fail only inside a model). The readers open the file in this process; since the
HDF5 C library crashes or hangs on some damaged files, a command given a file from
outside first checks it in a child process (`probe.probe_store`).
Writing goes through `guarded_file.GuardedFile`, because HDF5 does not recover from a
failed write.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Iterator, Sequence

import h5py
import numpy as np

from .atomic import atomic_output, write_error
from .errors import InputError
from .guarded_file import GuardedFile
from .store_check import check_image_size, check_range, validate_file
from .store_format import (FORMAT, HDF5_ERRORS, INK, LABEL_CHUNK, MAX_IMAGE_SIZE, TEXT, VERSION, ClassTable, GlyphSet,
                           StoreError, StoreSummary, check_traditional_of, first_line)

__all__ = ["FORMAT", "VERSION", "INK", "MAX_IMAGE_SIZE", "ClassTable", "GlyphSet", "StoreError", "StoreSummary", "StoreWriter",
           "check_image_size", "check_traditional_of", "iter_batches", "read_labels", "read_samples", "read_store", "validate_store", "write_store"]


class StoreWriter:
    """Stream batches of images into a new store at `path`.

    Use as a context manager. The file appears at `path` only when the `with` block
    ends without an exception; until then it lives under a temporary name beside it.
    Sources may be given up front or added as they are met (`add_source`), and
    `provenance` may be added to until the block ends: tables and attributes are written
    on exit. `traditional_of` (store layout above) is checked against `classes` up front.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        image_size: int,
        classes: ClassTable | Sequence[str],
        sources: Sequence[str] = (),
        provenance: dict[str, Any] | None = None,
        compression: str | None = None,
        traditional_of: dict[str, list[str]] | None = None,
    ) -> None:
        check_image_size(image_size)
        if compression not in (None, "gzip"):
            raise InputError(f"compression must be 'gzip' or none, got {compression!r}")
        self.path = Path(path)
        self.image_size = int(image_size)
        self.classes = classes if isinstance(classes, ClassTable) else ClassTable(list(classes))
        if len(self.classes) == 0:
            raise InputError("a glyph store needs at least one class")
        self.sources = list(sources)
        self.provenance = dict(provenance or {})
        self.traditional_of = check_traditional_of(dict(traditional_of or {}), self.classes)
        self.compression = compression
        self.count = 0
        self._stack: contextlib.ExitStack | None = None
        self._file: h5py.File | None = None
        self._sink: GuardedFile | None = None  # what HDF5 writes through
        self._datasets: dict[str, h5py.Dataset] = {}  # kept open while writing (closing one writes its cache)

    def __enter__(self) -> "StoreWriter":
        size = self.image_size
        with contextlib.ExitStack() as stack:  # unwinds (deleting the temporary file) only if set-up fails
            temporary = stack.enter_context(atomic_output(self.path))
            try:
                self._sink = GuardedFile(temporary)
            except OSError as error:
                raise write_error(self.path, error) from None
            stack.callback(self._close_sink)  # after the HDF5 file is closed: reports a write that failed then
            try:
                self._file = stack.enter_context(h5py.File(self._sink, "w"))
                with self._writing():
                    self._datasets["images"] = self._file.create_dataset(
                        "images", shape=(0, size, size), maxshape=(None, size, size), dtype=np.uint8,
                        chunks=(1, size, size), compression=self.compression,
                    )
                    for name in ("labels", "source_ids"):
                        self._datasets[name] = self._file.create_dataset(
                            name, shape=(0,), maxshape=(None,), dtype=np.int32, chunks=(LABEL_CHUNK,))
            except BaseException:
                self._sink.discard = True
                raise
            self._stack = stack.pop_all()
        return self

    def add_source(self, name: str) -> int:
        """Register a source (font face, writer, run) and return its id."""
        self.sources.append(str(name))
        return len(self.sources) - 1

    def append(self, images: np.ndarray, labels: np.ndarray | Sequence[int], source_ids: np.ndarray | Sequence[int] | int) -> None:
        """Append a batch: images uint8 (n, H, W), labels (n,), source ids (n,) or one id for all."""
        images = np.asarray(images)
        if images.ndim != 3 or images.shape[1:] != (self.image_size, self.image_size):
            raise InputError(f"images must have shape (n, {self.image_size}, {self.image_size}), got {images.shape}")
        if images.dtype != np.uint8:
            raise InputError(f"images must be uint8, got {images.dtype}")
        n = images.shape[0]
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        source_ids = np.broadcast_to(np.asarray(source_ids, dtype=np.int64), (n,))
        if labels.shape != (n,):
            raise InputError(f"got {n} images but {labels.shape[0]} labels")
        check_range("label", labels, len(self.classes))
        if n == 0:
            return
        start, end = self.count, self.count + n
        with self._writing():
            for name, values in (("images", images), ("labels", labels.astype(np.int32)), ("source_ids", source_ids.astype(np.int32))):
                self._datasets[name].resize(end, axis=0)
                self._datasets[name][start:end] = values
        self.count = end

    def __exit__(self, kind, value, traceback) -> None:
        stack, self._stack = self._stack, None
        if kind is not None:  # the body failed: close and delete the temporary file
            self._discard(stack, value)
            return
        try:
            if self.count == 0:
                raise InputError(f"nothing to write to {self.path}: no images")
            check_range("source id", self._datasets["source_ids"][:], len(self.sources))
            with self._writing():
                self._write_tables(self._file)
                self._file.flush()
        except BaseException as error:
            self._discard(stack, error)
            raise
        self._datasets.clear()
        stack.close()  # closes the HDF5 file, reports a write that failed there, renames the file into place

    def _discard(self, stack: contextlib.ExitStack, error: BaseException) -> None:
        """Close and delete the temporary file after `error`; nothing more is written to it."""
        self._sink.discard = True
        self._datasets.clear()
        stack.__exit__(type(error), error, error.__traceback__)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Report a write that failed in the block (disk full, file size limit) as one InputError line."""
        try:
            yield
        except OSError as error:
            raise write_error(self.path, self._sink.error or error) from None
        if self._sink.error is not None:
            raise write_error(self.path, self._sink.error)

    def _close_sink(self) -> None:
        self._sink.close()
        if self._sink.error is not None and not self._sink.discard:
            raise write_error(self.path, self._sink.error)

    def _write_tables(self, file: h5py.File) -> None:
        file.attrs["format"] = FORMAT
        file.attrs["version"] = VERSION
        file.attrs["image_size"] = self.image_size
        file.attrs["ink"] = INK
        file.attrs["provenance"] = json.dumps(self.provenance, ensure_ascii=False, sort_keys=True)
        if self.traditional_of:
            file.attrs["traditional_of"] = json.dumps(self.traditional_of, ensure_ascii=False)
        classes = file.create_group("classes")
        self._datasets["classes/text"] = classes.create_dataset("text", data=np.array(self.classes.text, dtype=object), dtype=TEXT)
        self._datasets["classes/codepoint"] = classes.create_dataset("codepoint", data=np.array(self.classes.codepoint, dtype=np.int32))
        sources = file.create_group("sources")
        self._datasets["sources/name"] = sources.create_dataset("name", data=np.array(self.sources, dtype=object), dtype=TEXT)


def write_store(path: str | os.PathLike, glyphs: GlyphSet, compression: str | None = None, batch: int = 4096) -> None:
    """Write a whole in-memory `GlyphSet` to `path`."""
    with StoreWriter(path, glyphs.image_size, glyphs.classes, glyphs.sources, glyphs.provenance, compression,
                     traditional_of=glyphs.traditional_of) as writer:
        for start in range(0, len(glyphs), batch):
            stop = start + batch
            writer.append(glyphs.images[start:stop], glyphs.labels[start:stop], glyphs.source_ids[start:stop])


def validate_store(path: str | os.PathLike) -> StoreSummary:
    """Check that `path` is a complete, consistent glyph store and summarise it.

    Reads no images but the first and last, which walks the chunk index from end to end.
    """
    with _opened(path) as (file, summary):
        if summary.num_images:
            file["images"][0], file["images"][summary.num_images - 1]
    return summary


def read_store(path: str | os.PathLike) -> GlyphSet:
    """Validate `path` and read it whole into memory."""
    with _opened(path) as (file, summary):
        images, labels, source_ids = (file[name][()] for name in ("images", "labels", "source_ids"))
    return GlyphSet(images, labels, summary.classes, summary.sources, source_ids, summary.provenance, summary.traditional_of)


def read_labels(path: str | os.PathLike) -> tuple[StoreSummary, np.ndarray, np.ndarray]:
    """Validate `path` and read its labels and source ids, not its images."""
    with _opened(path) as (file, summary):
        return summary, file["labels"][()], file["source_ids"][()]


def read_samples(path: str | os.PathLike, indices: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate `path` and read the images uint8 (n, H, W) and labels (n,) of the samples at `indices`."""
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    with _opened(path) as (file, summary):
        check_range("sample index", indices, summary.num_images)
        images = np.empty((len(indices), summary.image_size, summary.image_size), dtype=np.uint8)
        labels = np.empty(len(indices), dtype=np.int64)
        for position, index in enumerate(indices.tolist()):  # one at a time: h5py is slow at long index lists
            images[position], labels[position] = file["images"][index], file["labels"][index]
    return images, labels


def iter_batches(path: str | os.PathLike, batch: int = 4096) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Validate `path`, then yield (images uint8 (n, H, W), labels (n,), source ids (n,)) in file order.

    Memory stays at one batch whatever the size of the store. The file is open while the
    generator runs and closed when it finishes or is closed.
    """
    if batch < 1:
        raise InputError(f"batch size must be positive, got {batch}")
    with _opened(path) as (file, summary):
        images, labels, source_ids = file["images"], file["labels"], file["source_ids"]
        for start in range(0, summary.num_images, batch):
            stop = min(start + batch, summary.num_images)
            batch_data = images[start:stop], labels[start:stop], source_ids[start:stop]
            yield batch_data



@contextlib.contextmanager
def _opened(path: str | os.PathLike) -> Iterator[tuple[h5py.File, StoreSummary]]:
    """Open and validate `path` in this process; what h5py raises reading it in the block is one StoreError line."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: no such file")
    if path.is_dir():
        raise StoreError(f"{path}: is a folder, not a glyph store")
    try:
        if not h5py.is_hdf5(path):
            raise StoreError(f"{path}: not an HDF5 file (expected a glyph store)")
        file = h5py.File(path, "r")
    except HDF5_ERRORS as error:
        raise StoreError(f"{path}: cannot open HDF5 file ({first_line(error)})") from None
    with file:
        summary = validate_file(path, file)
        try:
            yield file, summary
        except HDF5_ERRORS as error:
            raise StoreError(f"{path}: damaged glyph store ({first_line(error)})") from None


