"""What the evaluation commands share: seed lists, class matching by text, JSON output, progress.

Progress: every experiment first prints an estimate of its run time (measured on its
own first steps, so it reflects this machine and its current load), then shows a tqdm
bar on a terminal, or a plain line every so often when stderr is a file or pipe (a
background run's log stays readable).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from tqdm import tqdm

from ..config import parse_ranges
from ..shared import ClassTable, InputError, atomic_output

SHOWN_NAMES = 20


def parse_seeds(text: str) -> list[int]:
    """ "0-2" -> [0, 1, 2]; "0,4,7-9" -> [0, 4, 7, 8, 9]; duplicates dropped, order kept."""
    return list(dict.fromkeys(parse_ranges(text, "--seeds")))


def class_mapping(source: ClassTable, target: ClassTable, source_name: str, target_name: str,
                  used: Sequence[int] | None = None) -> np.ndarray:
    """For each class of `source`, its index in `target` by class text (-1 where absent).

    Classes listed in `used` (default: all) must exist in `target`; otherwise one error
    names the missing ones, so a judge, a checkpoint and a data set built from different
    character lists never get compared index by index.
    """
    lookup = {text: index for index, text in enumerate(target.text)}
    mapping = np.array([lookup.get(text, -1) for text in source.text], dtype=np.int64)
    needed = range(len(source)) if used is None else used
    missing = [source.text[i] for i in needed if mapping[i] < 0]
    if missing:
        shown = " ".join(missing[:SHOWN_NAMES]) + (f" ... ({len(missing)} in all)" if len(missing) > SHOWN_NAMES else "")
        raise InputError(f"{len(missing)} class(es) of {source_name} are not in {target_name}'s class table "
                         f"({len(target)} classes): {shown}")
    return mapping


def write_json(data: Any, path: str | Path) -> Path:
    """Write `data` as indented UTF-8 JSON, atomically."""
    path = Path(path)
    with atomic_output(path) as temporary:
        temporary.write_text(json.dumps(_plain(data), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _plain(value: Any) -> Any:
    """numpy scalars and arrays -> Python numbers and lists; NaN/inf -> None (JSON has neither)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else None
    return value


def picture_path(out: str | Path) -> Path:
    """The picture of the best and worst classes that `evaluate generator` writes beside its report: <out>.png."""
    return Path(out).with_suffix(".png")


def format_duration(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def spread(values: Sequence[float]) -> dict[str, float]:
    """mean, sample standard deviation (0 for one value), min and max."""
    array = np.asarray(values, dtype=np.float64)
    return {"mean": float(array.mean()), "std": float(array.std(ddof=1)) if len(array) > 1 else 0.0,
            "min": float(array.min()), "max": float(array.max())}


class Progress:
    """A tqdm bar on a terminal; otherwise a line on stderr every `every` units."""

    def __init__(self, total: int, label: str, unit: str = "step", every: int | None = None) -> None:
        self.total, self.label, self.unit = total, label, unit
        self.every = every or max(1, total // 10)
        self.done = 0
        self.start = time.perf_counter()
        self.bar = tqdm(total=total, desc=label, unit=unit, dynamic_ncols=True) if sys.stderr.isatty() else None

    def line(self, text: str) -> None:
        (self.bar.write if self.bar else lambda t: print(t, file=sys.stderr, flush=True))(text)

    def estimate(self, done: int, seconds: float, extra: float = 0.0, what: str = "") -> float:
        """Print the estimated total run time from `done` units measured in `seconds`."""
        rate = done / max(seconds, 1e-9)
        total = self.total / rate + extra
        self.line(f"{self.label}: estimated run time {format_duration(total)} "
                  f"({rate:.1f} {self.unit}s/s measured on the first {done}{what})")
        return total

    def update(self, count: int = 1, **status: Any) -> None:
        before, self.done = self.done, self.done + count
        if self.bar:
            self.bar.update(count)
            if status:
                self.bar.set_postfix(status)
        elif self.done // self.every != before // self.every or self.done == self.total:
            elapsed = time.perf_counter() - self.start
            left = elapsed / self.done * (self.total - self.done) if self.done else 0.0
            extra = "".join(f" {k} {v}" for k, v in status.items())
            self.line(f"{self.label}: {self.done}/{self.total} {self.unit}s, {format_duration(elapsed)} elapsed, "
                      f"about {format_duration(left)} left{extra}")

    def close(self) -> None:
        if self.bar:
            self.bar.close()
