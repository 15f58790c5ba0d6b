"""What the evaluation commands share: JSON reports, the picture beside a report, mean and spread over seeds.

Seed lists and class matching are in selection.py, progress lines in progress.py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..data_tools_api import atomic_output


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


def spread(values: Sequence[float]) -> dict[str, float]:
    """mean, sample standard deviation (0 for one value), min and max."""
    array = np.asarray(values, dtype=np.float64)
    return {"mean": float(array.mean()), "std": float(array.std(ddof=1)) if len(array) > 1 else 0.0,
            "min": float(array.min()), "max": float(array.max())}
