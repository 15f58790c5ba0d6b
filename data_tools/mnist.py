"""MNIST importer: IDX files (raw or gzipped) -> glyph store.

We parse IDX ourselves instead of going through torchvision so that a truncated or
mixed-up download is caught with a message naming the file, and so importing needs
no torch. Resizing goes through PIL exactly as the reference code's `transforms.Resize(size)`
does, so a 32x32 store holds the very pixels the reference code trained on.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .errors import InputError
from .store import ClassTable, StoreWriter

IMAGES_MAGIC = 0x00000803  # unsigned byte data, 3 dimensions
LABELS_MAGIC = 0x00000801  # unsigned byte data, 1 dimension
NATIVE_SIZE = 28
CLASSES = [str(digit) for digit in range(10)]
SPLIT_PREFIX = {"train": "train", "test": "t10k"}
BATCH = 4096

_GZIP_MAGIC = b"\x1f\x8b"


def read_idx_bytes(path: str | os.PathLike) -> bytes:
    """The uncompressed bytes of an IDX file; gzip is detected by its magic bytes, not the name."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read ({error.strerror or error})") from None
    if not data.startswith(_GZIP_MAGIC):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as error:
        raise InputError(f"{path}: corrupt gzip data ({error})") from None


def read_idx_images(path: str | os.PathLike) -> np.ndarray:
    """Images of an IDX3 file as uint8 (N, rows, cols), ink 255 on background 0."""
    path = Path(path)
    data = read_idx_bytes(path)
    magic, count, rows, cols = _header(path, data, ">IIII", IMAGES_MAGIC, "images")
    if rows < 1 or cols < 1:
        raise InputError(f"{path}: image size {rows}x{cols} in the header is empty")
    _check_payload(path, data, header_size=16, expected=count * rows * cols)
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, rows, cols).copy()


def read_idx_labels(path: str | os.PathLike) -> np.ndarray:
    """Labels of an IDX1 file as uint8 (N,), each checked to be a digit 0..9."""
    path = Path(path)
    data = read_idx_bytes(path)
    magic, count = _header(path, data, ">II", LABELS_MAGIC, "labels")
    _check_payload(path, data, header_size=8, expected=count)
    labels = np.frombuffer(data, dtype=np.uint8, offset=8).copy()
    bad = np.flatnonzero(labels > 9)
    if bad.size:
        raise InputError(f"{path}: label {labels[bad[0]]} at sample {bad[0]} is not a digit 0..9")
    return labels


def _header(path: Path, data: bytes, layout: str, magic: int, kind: str) -> tuple[int, ...]:
    size = struct.calcsize(layout)
    if len(data) < size:
        raise InputError(f"{path}: too short for an IDX {kind} header ({len(data)} bytes)")
    fields = struct.unpack_from(layout, data)
    if fields[0] != magic:
        raise InputError(f"{path}: not an IDX {kind} file (magic 0x{fields[0]:08x}, expected 0x{magic:08x})")
    return fields


def _check_payload(path: Path, data: bytes, header_size: int, expected: int) -> None:
    payload = len(data) - header_size
    if payload < expected:
        raise InputError(f"{path}: truncated ({payload} data bytes, header promises {expected})")
    if payload > expected:
        raise InputError(f"{path}: {payload - expected} unexpected bytes after the data the header describes")


def find_idx_files(idx_dir: str | os.PathLike, split: str) -> tuple[Path, Path]:
    """(images, labels) paths for `split` in `idx_dir`, accepting the usual name variants."""
    folder = Path(idx_dir)
    if split not in SPLIT_PREFIX:
        raise InputError(f"unknown MNIST split {split!r} (expected 'train' or 'test')")
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder (expected MNIST IDX files)")
    prefix = SPLIT_PREFIX[split]
    return (
        _find_one(folder, split, f"{prefix}-images", "idx3-ubyte"),
        _find_one(folder, split, f"{prefix}-labels", "idx1-ubyte"),
    )


def _find_one(folder: Path, split: str, stem: str, kind: str) -> Path:
    names = [f"{stem}-{kind}", f"{stem}.{kind}"]  # the second is a common re-upload spelling
    for name in names + [name + ".gz" for name in names]:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    raise InputError(f"{folder}: no MNIST {split} file {names[0]} (or .gz)")


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """Resize uint8 (N, H, W) to (N, size, size) as torchvision's `Resize(size)` does on PIL images."""
    if images.shape[1:] == (size, size):
        return images
    resized = np.empty((images.shape[0], size, size), dtype=np.uint8)
    for index, image in enumerate(images):
        resized[index] = np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))
    return resized


def import_mnist(
    idx_dir: str | os.PathLike,
    split: str,
    size: int,
    out: str | os.PathLike,
    compression: str | None = None,
    provenance_extra: dict[str, Any] | None = None,
) -> int:
    """Write MNIST `split` from the IDX files in `idx_dir` to a glyph store; return the count."""
    images_path, labels_path = find_idx_files(idx_dir, split)
    images = read_idx_images(images_path)
    labels = read_idx_labels(labels_path)
    if len(images) != len(labels):
        raise InputError(f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels")
    if images.shape[1] != images.shape[2]:
        raise InputError(f"{images_path}: images are {images.shape[1]}x{images.shape[2]}; only square images are supported")
    if size < 1:
        raise InputError(f"image size must be positive, got {size}")
    provenance = {
        "command": "data-tools mnist",
        "split": split,
        "size": size,
        "native_size": int(images.shape[1]),
        "resize": "none" if size == images.shape[1] else "PIL bilinear, as torchvision transforms.Resize",
        "source_files": {str(path): _sha256(path) for path in (images_path, labels_path)},
    }
    provenance.update(provenance_extra or {})
    with StoreWriter(out, size, ClassTable(CLASSES), [f"MNIST {split}"], provenance, compression) as writer:
        for start in range(0, len(images), BATCH):
            stop = start + BATCH
            writer.append(resize_images(images[start:stop], size), labels[start:stop], 0)
    return len(images)


def _sha256(path: Path) -> str:
    """Digest of the file as given (compressed or not), to tell which download was used."""
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def download_mnist(root: str | os.PathLike, split: str) -> Path:
    """Fetch MNIST with torchvision into `root`; return the folder of raw IDX files.

    torchvision fetches all four files (both splits) whichever split is asked for.
    """
    if split not in SPLIT_PREFIX:
        raise InputError(f"unknown MNIST split {split!r} (expected 'train' or 'test')")
    from torchvision.datasets import MNIST  # imported here: torch is slow to import and only needed for this

    try:
        MNIST(str(root), train=split == "train", download=True)
    except (OSError, RuntimeError) as error:  # urllib errors are OSErrors; torchvision raises RuntimeError when every mirror fails
        reason = " ".join(str(error).split())  # keep the message on one line
        raise InputError(f"could not download MNIST: {reason}; pass --idx-dir with local files") from None
    return Path(root) / "MNIST" / "raw"
