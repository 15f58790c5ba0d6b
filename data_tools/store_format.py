"""The glyph store's format constants and in-memory types (store.py documents the layout).

They live apart from store.py so that the validation in store_check.py and the
readers and writer in store.py can share them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .errors import InputError

FORMAT = "cond-lsgan-glyphs"
VERSION = 1
INK = "light-on-dark"

TEXT = h5py.string_dtype("utf-8")
LABEL_CHUNK = 65536  # labels and source ids are small; read and written in large chunks
MAX_IMAGE_SIZE = 1024  # glyphs are tens of pixels; a larger size is a typo that would allocate gigabytes
MAX_DEFLATE_RATIO = 1100  # deflate cannot shrink data more than ~1032:1, so a gzip dataset holds at most this x its file


class StoreError(InputError):
    """A file is not a valid glyph store (wrong kind, newer version, inconsistent content)."""


@dataclass
class ClassTable:
    """Class index -> name. `codepoint[i]` is ord(text[i]) for one-character names, else -1."""

    text: list[str]
    codepoint: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.text = [str(t) for t in self.text]
        if len(self.codepoint) == 0:
            self.codepoint = [ord(t) if len(t) == 1 else -1 for t in self.text]
        self.codepoint = [int(c) for c in self.codepoint]
        if len(self.codepoint) != len(self.text):
            raise StoreError(f"class table has {len(self.text)} names but {len(self.codepoint)} code points")
        if len(set(self.text)) != len(self.text):
            duplicates = sorted({t for t in self.text if self.text.count(t) > 1})
            raise StoreError(f"class names must be unique; repeated: {', '.join(duplicates[:10])}")

    def __len__(self) -> int:
        return len(self.text)

    def index(self, text: str) -> int:
        """The class index of a name (raises InputError naming it if absent)."""
        try:
            return self.text.index(text)
        except ValueError:
            raise InputError(f"class {text!r} is not in the class table ({len(self)} classes)") from None

    def to_dict(self) -> dict[str, list]:
        return {"text": list(self.text), "codepoint": list(self.codepoint)}

    @classmethod
    def from_dict(cls, table: dict[str, list]) -> "ClassTable":
        return cls(text=list(table["text"]), codepoint=list(table["codepoint"]))


@dataclass
class GlyphSet:
    """A whole store in memory."""

    images: np.ndarray  # uint8 (N, H, W)
    labels: np.ndarray  # int32 (N,)
    classes: ClassTable
    sources: list[str]
    source_ids: np.ndarray  # int32 (N,)
    provenance: dict[str, Any]
    traditional_of: dict[str, list[str]] = field(default_factory=dict)  # see check_traditional_of

    @property
    def image_size(self) -> int:
        return int(self.images.shape[1])

    def __len__(self) -> int:
        return int(self.images.shape[0])


@dataclass
class StoreSummary:
    """What `validate_store` learned about a file (reading no images but the first and last)."""

    path: Path
    num_images: int
    image_size: int
    classes: ClassTable
    sources: list[str]
    provenance: dict[str, Any]
    compression: str | None
    traditional_of: dict[str, list[str]] = field(default_factory=dict)  # see check_traditional_of


def check_traditional_of(mapping: Any, classes: ClassTable) -> dict[str, list[str]]:
    """The `traditional_of` map of a store, checked against its class table; InputError naming what is wrong.

    {class text of a traditional form: [class texts of the simplified characters it is
    the form of]} (`render --with-traditional`; data_tools/traditional.py): every name is
    a class of the store, each list is non-empty, and no class is a form of itself.
    """
    if not isinstance(mapping, dict):
        raise InputError(f"the traditional_of map must be a JSON object, got {type(mapping).__name__}")
    names = set(classes.text)
    checked = {}
    for traditional, simplified in mapping.items():
        if not isinstance(simplified, list) or not simplified or not all(isinstance(s, str) for s in simplified):
            raise InputError(f"the traditional_of map gives {traditional!r} {simplified!r}, not a list of class names")
        unknown = [name for name in [traditional, *simplified] if name not in names]
        if unknown:
            raise InputError(f"the traditional_of map names {unknown[0]!r}, which is not a class of the store")
        if traditional in simplified:
            raise InputError(f"the traditional_of map makes {traditional!r} a traditional form of itself")
        checked[str(traditional)] = list(dict.fromkeys(simplified))
    return checked


# What h5py raises for a damaged file varies with the damage.
HDF5_ERRORS = (KeyError, ValueError, TypeError, OSError, RuntimeError, AttributeError, IndexError, OverflowError)


def first_line(error: BaseException) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0]
