"""Split a glyph store into train and test stores (`data-tools split`).

Two ways to choose the test samples:

- hold out whole sources (fonts or writers): the test set measures generalisation to a
  font or hand the model never saw, which is what a recogniser trained on augmented data
  is for;
- a per-class fraction: each class puts round(F * count) of its samples (rounded half
  up) into test, chosen by a seeded RNG, so every class is represented in proportion
  and the same seed gives the same split. A class always keeps at least one sample in
  train (a class with one sample stays whole in train), so training never lacks a class
  that test has.

Both outputs keep the input's full class table and source table with the same indices
(and its `traditional_of` map, `render --with-traditional`),
so a label or source id means the same thing in the input, train and test, and a model
trained on one can be evaluated on the other without remapping. Both keep the input's
compression and sample order.

Neither output may be the input store or the other output (`paths.check_outputs_apart`,
before anything is read). Both stores are written completely under temporary names
first; only then are they renamed into place, test first, then train. A failure while
writing either (bad input, full disk, Ctrl-C) leaves both destinations untouched, and its
message names the user's path, not the temporary one. The one remaining window is
between the two renames: if renaming train fails after test was renamed, test is
complete and new and train is untouched.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .atomic import atomic_output
from .errors import InputError
from .paths import check_outputs_apart
from .probe import probe_store
from .store import StoreSummary, StoreWriter, iter_batches, read_labels

SHOWN_SOURCES = 30


@dataclass
class SplitSummary:
    train: Path
    test: Path
    train_images: int
    test_images: int


def holdout_mask(summary: StoreSummary, source_ids: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """True for the samples whose source is one of `names` (all must exist in the store)."""
    if not names:
        raise InputError("--holdout-sources needs at least one source name")
    unknown = [name for name in names if name not in summary.sources]
    if unknown:
        available = ", ".join(summary.sources[:SHOWN_SOURCES])
        if len(summary.sources) > SHOWN_SOURCES:
            available += f", ... ({len(summary.sources) - SHOWN_SOURCES} more; see data-tools info)"
        raise InputError(f"{summary.path} has no source {', '.join(map(repr, unknown))}; its sources are: {available}")
    held = [index for index, name in enumerate(summary.sources) if name in set(names)]
    return np.isin(source_ids, held)


def fraction_mask(labels: np.ndarray, num_classes: int, fraction: float, seed: int) -> np.ndarray:
    """True for the test samples: per class, round-half-up(fraction * count), at most count - 1, by seeded RNG."""
    if not 0 < fraction < 1:
        raise InputError(f"--test-fraction must be between 0 and 1 (exclusive), got {fraction}")
    if seed < 0:
        raise InputError(f"--seed must be 0 or more, got {seed}")
    rng = np.random.default_rng(seed)
    order = np.argsort(labels, kind="stable")  # samples grouped by class, in file order within a class
    counts = np.bincount(labels, minlength=num_classes)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    mask = np.zeros(len(labels), dtype=bool)
    for label in range(num_classes):
        count = int(counts[label])
        take = min(count - 1, math.floor(fraction * count + 0.5))
        if take > 0:
            members = order[starts[label] : starts[label] + count]
            mask[rng.choice(members, size=take, replace=False)] = True
    return mask


def split_store(
    path: str | os.PathLike,
    train_out: str | os.PathLike,
    test_out: str | os.PathLike,
    holdout_sources: Sequence[str] | None = None,
    test_fraction: float | None = None,
    seed: int = 0,
) -> SplitSummary:
    """Write the samples of `path` to `train_out` and `test_out` (see the module docstring)."""
    if (holdout_sources is None) == (test_fraction is None):
        raise InputError("split needs exactly one of --holdout-sources and --test-fraction")
    train_out, test_out = Path(train_out), Path(test_out)
    check_outputs_apart({"store": path}, {"--train": train_out, "--test": test_out})  # nor each other
    probe_store(path)  # a file from outside: checked in a child first
    summary, labels, source_ids = read_labels(path)
    if holdout_sources is not None:
        mask = holdout_mask(summary, source_ids, holdout_sources)
        how = {"holdout_sources": list(holdout_sources)}
    else:
        mask = fraction_mask(labels, len(summary.classes), test_fraction, seed)
        how = {"test_fraction": test_fraction, "seed": seed}
    test_count = int(mask.sum())
    if test_count == 0:
        raise InputError(f"the test set would be empty (no sample of {summary.path} is chosen for it)")
    if test_count == len(mask):
        raise InputError(f"the train set would be empty (every sample of {summary.path} is chosen for test)")

    def writer(temporary: Path, part: str) -> StoreWriter:
        provenance = {"command": "data-tools split", "part": part, "input": str(summary.path),
                      "input_provenance": summary.provenance, **how}
        return StoreWriter(temporary, summary.image_size, summary.classes, summary.sources, provenance, summary.compression,
                           traditional_of=summary.traditional_of)

    # Outer: both temporaries are renamed only after both stores are complete (test first).
    with atomic_output(train_out) as train_temporary, atomic_output(test_out) as test_temporary:
        with writer(train_temporary, "train") as train, writer(test_temporary, "test") as test:
            start = 0
            for images, batch_labels, batch_sources in iter_batches(summary.path):
                chosen = mask[start : start + len(images)]
                start += len(images)
                train.append(images[~chosen], batch_labels[~chosen], batch_sources[~chosen])
                test.append(images[chosen], batch_labels[chosen], batch_sources[chosen])
            if start != len(mask):  # the file changed since its labels were read
                raise InputError(f"{summary.path} changed while it was being split")
    return SplitSummary(train_out, test_out, len(mask) - test_count, test_count)
