"""Look inside a glyph store: a text report (`data-tools info`) and a sample grid (`preview`)."""

from __future__ import annotations

import json
import os
from typing import Sequence

import numpy as np
from PIL import Image

from .errors import InputError
from .grid import CANVAS, image_grid
from .probe import probe_store
from .store import StoreSummary, read_labels, read_samples

SHOWN_CLASSES = 20
SHOWN_SOURCES = 20
MAX_PREVIEW_IMAGES = 10_000  # cells in one preview grid


def store_report(path: str | os.PathLike) -> str:
    """Check the store at `path` (in a child process first) and describe it; reads its labels and source ids."""
    probe_store(path)
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
    ]
    if summary.traditional_of:
        pairs = [f"{form} of {'/'.join(simplified)}" for form, simplified in summary.traditional_of.items()]
        lines.append(f"traditional:  {len(pairs):,} classes are traditional forms of others: {', '.join(pairs[:SHOWN_CLASSES // 2])}"
                     + (f", ... ({len(pairs) - SHOWN_CLASSES // 2} more)" if len(pairs) > SHOWN_CLASSES // 2 else ""))
    lines.append(f"sources:      {len(summary.sources):,}")
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


def preview_grid(
    path: str | os.PathLike,
    n: int = 64,
    seed: int = 0,
    columns: int | None = None,
    classes: Sequence[str] | None = None,
    per_class: int | None = None,
) -> Image.Image:
    """A grid of randomly chosen samples (reproducible from `seed`), captioned with class text.

    By default `n` samples of any class. `classes` (class texts) limits the grid to those
    classes. `per_class` shows that many samples of each class, one row per class (fewer
    where a class has fewer): the given `classes`, or else n // per_class classes picked
    at random among those that have samples, in class order. Only the shown samples'
    images are read.
    """
    if not 1 <= n <= MAX_PREVIEW_IMAGES:
        raise InputError(f"--n must be between 1 and {MAX_PREVIEW_IMAGES:,}, got {n}")
    if seed < 0:
        raise InputError(f"--seed must be 0 or more, got {seed}")
    if per_class is not None and per_class > MAX_PREVIEW_IMAGES:
        raise InputError(f"--per-class must be at most {MAX_PREVIEW_IMAGES:,}, got {per_class}")
    if columns is not None and columns < 1:
        raise InputError(f"--columns must be at least 1, got {columns}")
    if per_class is not None and per_class < 1:
        raise InputError(f"--per-class must be at least 1, got {per_class}")
    if per_class is not None and columns is not None:
        raise InputError("--columns does not go with --per-class (each row is one class, --per-class wide)")
    summary = probe_store(path)
    if summary.num_images == 0:
        raise InputError(f"{summary.path} holds no images to preview")
    table = summary.classes
    rng = np.random.default_rng(seed)
    if classes is None and per_class is None:
        indices = rng.choice(summary.num_images, size=min(n, summary.num_images), replace=False)
        images, labels = read_samples(path, indices)
        return image_grid(images, captions=[table.text[label] for label in labels], columns=columns)

    _, labels, _ = read_labels(path)
    if classes is not None:
        shown = [_class_index(summary, text) for text in dict.fromkeys(classes)]  # repeats shown once
        counts = np.bincount(labels, minlength=len(table))
        for label in shown:
            if counts[label] == 0:
                raise InputError(f"{summary.path}: class {table.text[label]!r} has no samples")
    else:
        present = np.flatnonzero(np.bincount(labels, minlength=len(table)))
        shown = sorted(rng.choice(present, size=min(len(present), max(1, n // per_class)), replace=False).tolist())
    if per_class is None:
        pool = np.flatnonzero(np.isin(labels, shown))
        indices = rng.choice(pool, size=min(n, len(pool)), replace=False)
        images, _ = read_samples(path, indices)
        return image_grid(images, captions=[table.text[labels[index]] for index in indices], columns=columns)

    if len(shown) * per_class > MAX_PREVIEW_IMAGES:
        raise InputError(f"{len(shown):,} classes x --per-class {per_class:,} is more than {MAX_PREVIEW_IMAGES:,} images; show fewer")
    cells, captions = [], []  # cells: a sample index, or None for a blank cell
    for label in shown:
        members = np.flatnonzero(labels == label)
        chosen = np.sort(rng.choice(members, size=min(per_class, len(members)), replace=False)).tolist()
        cells += chosen + [None] * (per_class - len(chosen))
        captions += [table.text[label]] * len(chosen) + [""] * (per_class - len(chosen))
    images = iter(read_samples(path, [index for index in cells if index is not None])[0])
    blank = np.full((summary.image_size, summary.image_size), CANVAS, dtype=np.uint8)
    grid = np.stack([blank if index is None else next(images) for index in cells])
    return image_grid(grid, captions=captions, columns=per_class)


def parse_class_list(text: str) -> list[str]:
    """Class texts from a comma-separated list ("啊,阿"); blanks around names are ignored."""
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise InputError(f"--classes {text!r} has an empty name (write class texts separated by commas)")
    return names


def _class_index(summary: StoreSummary, text: str) -> int:
    try:
        return summary.classes.text.index(text)
    except ValueError:
        raise InputError(f"{summary.path} has no class {text!r} ({len(summary.classes):,} classes; see data-tools info)") from None
