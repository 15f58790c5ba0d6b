"""Merge glyph stores into one (`data-tools merge`): e.g. rendered fonts + handwriting + generated.

Class indices differ from store to store, so classes are matched by their text: the merged
class table is the union of the inputs' tables in first-seen order (the first input's
classes keep their indices), each class carrying its code point from the first input that
has it, and every label is remapped to it. Sources are matched the same way, by name: a
source name means one font face, writer or generation run wherever it appears (a split
store merged back together gets its original source table back; holdout by name stays
unambiguous). Inputs that mean different things by one name should be renamed first.

Images are not resized: inputs of different image sizes are an error. The provenance lists
each input with its own provenance, so a merged file still says what made every part.

The inputs' `traditional_of` maps (`render --with-traditional`) are united: a class is a
traditional form of every simplified class any input says it is, so merging a store
with traditional classes and one without (or with another charset's) keeps them all.
That a character is a traditional form of another is a fact about the characters, not
about one store, so two maps never contradict each other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import InputError
from .probe import probe_store
from .store import ClassTable, StoreSummary, StoreWriter, iter_batches


@dataclass
class MergeSummary:
    out: Path
    images: int
    classes: int
    sources: int
    inputs: list[tuple[Path, int]]  # (path, images) per input
    traditional: int = 0  # classes the merged store records as traditional forms of others


class _Union:
    """Names in first-seen order, each with a value carried from its first appearance."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.names: list[str] = []
        self.values: list[int] = []

    def add(self, names: Sequence[str], values: Sequence[int] | None = None) -> np.ndarray:
        """Add `names`; return each one's index in the union (int32)."""
        mapping = np.empty(len(names), dtype=np.int32)
        for position, name in enumerate(names):
            if name not in self.index:
                self.index[name] = len(self.names)
                self.names.append(name)
                self.values.append(values[position] if values is not None else 0)
            mapping[position] = self.index[name]
        return mapping


def merge_stores(
    inputs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    compression: str | None = None,
) -> MergeSummary:
    """Write the samples of every store in `inputs`, in order, to one store at `out`."""
    if not inputs:
        raise InputError("merge needs at least one input store")
    summaries: list[StoreSummary] = []
    seen: dict[Path, Path] = {}
    for path in map(Path, inputs):
        key = path.resolve()
        if key in seen:
            raise InputError(f"{path} is given twice (as {seen[key]}); each input is merged once")
        seen[key] = path
        summaries.append(probe_store(path))  # a file from outside: checked in a child first
    first = summaries[0]
    for summary in summaries[1:]:
        if summary.image_size != first.image_size:
            raise InputError(
                f"cannot merge {summary.path} ({summary.image_size}x{summary.image_size} images) with "
                f"{first.path} ({first.image_size}x{first.image_size}): image sizes differ"
            )

    classes, sources = _Union(), _Union()
    label_maps = [classes.add(s.classes.text, s.classes.codepoint) for s in summaries]
    source_maps = [sources.add(s.sources) for s in summaries]
    provenance = {
        "command": "data-tools merge",
        "inputs": [
            {"path": str(s.path), "images": s.num_images, "classes": len(s.classes), "sources": len(s.sources), "provenance": s.provenance}
            for s in summaries
        ],
    }
    table = ClassTable(classes.names, classes.values)
    traditional_of: dict[str, list[str]] = {}
    for summary in summaries:
        for form, simplified in summary.traditional_of.items():
            traditional_of[form] = list(dict.fromkeys(traditional_of.get(form, []) + simplified))
    with StoreWriter(out, first.image_size, table, sources.names, provenance, compression,
                     traditional_of=traditional_of) as writer:
        for summary, label_map, source_map in zip(summaries, label_maps, source_maps):
            for images, labels, source_ids in iter_batches(summary.path):
                writer.append(images, label_map[labels], source_map[source_ids])
        count = writer.count
    return MergeSummary(Path(out), count, len(table), len(sources.names), [(s.path, s.num_images) for s in summaries],
                        len(traditional_of))
