"""Look inside a glyph store: a text report (`data-tools info`) and a sample grid (`preview`)."""

from __future__ import annotations

import json
import os

import numpy as np
from PIL import Image

from .errors import InputError
from .grid import image_grid
from .store import LazyStore, StoreSummary, read_labels

SHOWN_CLASSES = 20
SHOWN_SOURCES = 20


def store_report(path: str | os.PathLike) -> str:
    """Validate the store at `path` and describe it; reads labels and source ids, never images."""
    summary, labels, source_ids = read_labels(path)
    return format_report(summary, labels, source_ids, summary.path.stat().st_size)


def format_report(summary: StoreSummary, labels: np.ndarray, source_ids: np.ndarray, file_size: int) -> str:
    """A human-readable description of a validated store."""
    classes = summary.classes
    per_class = np.bincount(labels, minlength=len(classes))
    per_source = np.bincount(source_ids, minlength=len(summary.sources))
    shown = ", ".join(classes.text[:SHOWN_CLASSES])
    if len(classes) > SHOWN_CLASSES:
        shown += f", ... ({len(classes) - SHOWN_CLASSES} more)"
    lines = [
        f"path:         {summary.path}",
        f"file size:    {_human_size(file_size)} ({file_size:,} bytes)",
        f"images:       {summary.num_images:,}",
        f"image size:   {summary.image_size}x{summary.image_size}",
        f"compression:  {summary.compression or 'none'}",
        f"classes:      {len(classes):,}: {shown}",
        f"per class:    min {per_class.min():,}, median {_median(per_class)}, max {per_class.max():,}"
        + (f"; {np.count_nonzero(per_class == 0):,} classes have no samples" if per_class.min() == 0 else ""),
        f"sources:      {len(summary.sources):,}",
    ]
    for name, count in list(zip(summary.sources, per_source))[:SHOWN_SOURCES]:
        lines.append(f"  {count:>10,}  {name}")
    if len(summary.sources) > SHOWN_SOURCES:
        lines.append(f"  ... ({len(summary.sources) - SHOWN_SOURCES} more sources)")
    provenance = json.dumps(summary.provenance, indent=2, ensure_ascii=False, sort_keys=True)
    lines.append("provenance:   " + provenance.replace("\n", "\n              "))
    return "\n".join(lines)


def _median(counts: np.ndarray) -> str:
    median = float(np.median(counts))
    return f"{median:,.0f}" if median.is_integer() else f"{median:,.1f}"


def _human_size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    value = size / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def preview_grid(path: str | os.PathLike, n: int = 64, seed: int = 0, columns: int | None = None) -> Image.Image:
    """A grid of `n` randomly chosen samples (reproducible from `seed`), captioned with class text."""
    if n < 1:
        raise InputError(f"--n must be at least 1, got {n}")
    if columns is not None and columns < 1:
        raise InputError(f"--columns must be at least 1, got {columns}")
    store = LazyStore(path)
    rng = np.random.default_rng(seed)
    indices = rng.choice(len(store), size=min(n, len(store)), replace=False)
    samples = [store[int(index)] for index in indices]
    images = np.stack([image for image, _ in samples])
    captions = [store.summary.classes.text[label] for _, label in samples]
    return image_grid(images, captions=captions, columns=columns)
