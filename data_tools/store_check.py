"""Validation of a glyph store file: every reader in store.py runs it before reading.

Files are untrusted input (store.py's docstring says what is checked and why); every
problem is one StoreError line naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from .errors import InputError
from .store_format import (FORMAT, HDF5_ERRORS, INK, LABEL_CHUNK, MAX_DEFLATE_RATIO, MAX_IMAGE_SIZE, VERSION, ClassTable,
                           StoreError, StoreSummary, check_traditional_of, first_line)


def validate_file(path: Path, file: h5py.File) -> StoreSummary:
    def fail(message: str) -> StoreError:
        return StoreError(f"{path}: {message}")

    try:
        kind = _attr_str(file, "format")
        if kind != FORMAT:
            raise fail(f"not a glyph store (format attribute is {kind!r}, expected {FORMAT!r})")
        version = int(file.attrs.get("version", -1))
        if version > VERSION:
            raise fail(f"glyph store version {version} is newer than this tool reads (version {VERSION}); upgrade cond-lsgan")
        if version < 1:
            raise fail(f"invalid glyph store version {version}")
        ink = _attr_str(file, "ink")
        if ink != INK:
            raise fail(f"unsupported ink convention {ink!r} (expected {INK!r})")
        size = int(file.attrs.get("image_size", -1))
        try:
            check_image_size(size)
        except InputError as error:
            raise fail(f"{error} (image_size attribute)") from None
        try:
            provenance = json.loads(_attr_str(file, "provenance") or "{}")
        except json.JSONDecodeError:
            raise fail("provenance attribute is not valid JSON") from None
        if not isinstance(provenance, dict):
            raise fail("provenance attribute is not a JSON object")

        file_size = path.stat().st_size
        for name in ("images", "labels", "source_ids", "classes/text", "classes/codepoint", "sources/name"):
            if name not in file or not isinstance(file[name], h5py.Dataset):
                raise fail(f"missing dataset '{name}'")
            _check_declared_size(fail, name, file[name], file_size)
        images, labels, source_ids = file["images"], file["labels"], file["source_ids"]
        if images.dtype != np.uint8 or images.ndim != 3:
            raise fail(f"images must be uint8 (N, H, W), found {images.dtype} {images.shape}")
        n = images.shape[0]
        if images.shape[1:] != (size, size):
            raise fail(f"images are {images.shape[1]}x{images.shape[2]} but image_size attribute is {size}")
        for name, data in (("labels", labels), ("source_ids", source_ids)):
            if data.shape != (n,) or data.dtype.kind not in "iu":
                raise fail(f"{name} must be integers of shape ({n},), found {data.dtype} {data.shape}")
        try:
            classes = ClassTable(text=list(file["classes/text"].asstr()[()]), codepoint=list(file["classes/codepoint"][()]))
        except StoreError as error:
            raise fail(str(error)) from None
        sources = list(file["sources/name"].asstr()[()])
        if len(classes) == 0:
            raise fail("class table is empty")
        _check_dataset_range(fail, "label", labels, len(classes))
        _check_dataset_range(fail, "source id", source_ids, len(sources))
        traditional_of = _traditional_of(fail, file, classes)
    except StoreError:
        raise
    except HDF5_ERRORS as error:
        raise fail(f"damaged or inconsistent glyph store ({first_line(error)})") from None
    return StoreSummary(path, n, size, classes, sources, provenance, images.compression, traditional_of)


def _traditional_of(fail, file: h5py.File, classes: ClassTable) -> dict[str, list[str]]:
    """The optional `traditional_of` attribute (stores before it, and stores without traditional classes, lack it)."""
    text = _attr_str(file, "traditional_of")
    if text is None:
        return {}
    try:
        return check_traditional_of(json.loads(text), classes)
    except json.JSONDecodeError:
        raise fail("traditional_of attribute is not valid JSON") from None
    except InputError as error:
        raise fail(f"{error} (traditional_of attribute)") from None


def _check_declared_size(fail, name: str, data: h5py.Dataset, file_size: int) -> None:
    """A dataset cannot hold more than its file does: a damaged or crafted shape would
    otherwise make a reader allocate (or loop over) data that is not there."""
    declared = int(np.prod(data.shape, dtype=object)) * data.dtype.itemsize
    filtered = data.id.get_create_plist().get_nfilters() > 0
    if declared > file_size * (MAX_DEFLATE_RATIO if filtered else 1):
        raise fail(f"dataset '{name}' claims shape {data.shape}, more data than the {file_size:,}-byte file can hold (damaged)")


def _attr_str(file: h5py.File, name: str) -> str | None:
    value = file.attrs.get(name)
    return value.decode() if isinstance(value, bytes) else (None if value is None else str(value))


def check_range(what: str, values: np.ndarray, limit: int) -> None:
    if values.size and (values.min() < 0 or values.max() >= limit):
        bad = values[(values < 0) | (values >= limit)][0]
        raise InputError(f"{what} {bad} is out of range [0, {limit})")


def _check_dataset_range(fail, what: str, data: h5py.Dataset, limit: int) -> None:
    for start in range(0, data.shape[0], LABEL_CHUNK):
        values = data[start : start + LABEL_CHUNK]
        try:
            check_range(what, values, limit)
        except InputError as error:
            raise fail(f"{error} at sample {start + int(np.argmax((values < 0) | (values >= limit)))}") from None


def check_image_size(size: int) -> None:
    """Reject an image size no glyph store should have (before anything is allocated for it)."""
    if not 1 <= size <= MAX_IMAGE_SIZE:
        raise InputError(f"image size must be between 1 and {MAX_IMAGE_SIZE} pixels, got {size}")
