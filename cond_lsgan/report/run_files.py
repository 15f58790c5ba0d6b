"""What a run folder holds, read for a report while the run may still be writing it.

A live run appends to metrics.jsonl (its last line may be cut off), adds grids and
checkpoints, and may have written no grid yet; a resumed run logs again the steps after
its checkpoint. So nothing here insists: a cut or unreadable line, a damaged grid and a
step logged twice become notes for the page, and the newest record of a step wins. A
DDP run's folder is written by rank 0 alone and reads the same. What is refused is a
path that is no run folder at all, and a config.json that is not JSON (it is written
atomically, so that is damage, not a run in progress).
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from ..run_folder import CONFIG_FILE, LOCK_NAME, LOG_FILE, METRICS_FILE
from ..shared import InputError

SAMPLES, CHECKPOINTS = "samples", "checkpoints"
MARKERS = (CONFIG_FILE, METRICS_FILE, LOG_FILE, SAMPLES, CHECKPOINTS, LOCK_NAME)  # any of them makes a run folder
MAX_GRIDS = 60  # grids embedded; a longer run shows this many, evenly spaced, first and last included
LOG_LINES = 30  # the end of log.txt shown
_GRID = re.compile(r"^step_(\d+)\.png$")
_CHECKPOINT = re.compile(r"^step_(\d+)\.pt$")


@dataclass
class RunFiles:
    path: Path
    config: dict | None  # config.json, None before the run wrote it
    metrics: list[dict]  # one record per logged step, in step order
    grids: list[tuple[int, bytes]]  # (step, PNG bytes) of the grids shown
    grid_count: int  # grids in samples/ (more than shown in a long run)
    log_tail: list[str]
    checkpoints: list[int]  # steps of the checkpoints present
    notes: list[str] = field(default_factory=list)  # what was left out, and why

    @property
    def name(self) -> str:
        return self.path.resolve().name


def read_run(run_dir: str | Path) -> RunFiles:
    """Read a run folder of `cond-lsgan train`; InputError if `run_dir` is none."""
    path = Path(run_dir)
    if not path.exists():
        raise InputError(f"run folder not found: {path}")
    if not path.is_dir():
        raise InputError(f"{path} is a file, not a run folder (the --out of cond-lsgan train)")
    if not any((path / marker).exists() for marker in MARKERS):
        raise InputError(f"{path} is not a run folder of cond-lsgan train: it has none of "
                         f"{', '.join(MARKERS[:3])}, {SAMPLES}/, {CHECKPOINTS}/")
    notes: list[str] = []
    metrics = _read_metrics(path / METRICS_FILE, notes)
    grids, grid_count = _read_grids(path / SAMPLES, notes)
    log_text = _read_text(path / LOG_FILE)
    checkpoints = sorted(int(m.group(1)) for m in _matches(path / CHECKPOINTS, _CHECKPOINT))
    return RunFiles(path, _read_config(path / CONFIG_FILE), metrics, grids, grid_count,
                    log_text.splitlines()[-LOG_LINES:] if log_text else [], checkpoints, notes)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise InputError(f"cannot read {path}: {error.strerror or error}") from None


def _read_config(path: Path) -> dict | None:
    text = _read_text(path)
    if text is None:
        return None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(config, dict):
        raise InputError(f"{path}: not a run config (a JSON object of sections)")
    return config


def _read_metrics(path: Path, notes: list[str]) -> list[dict]:
    text = _read_text(path)
    if not text:
        return []
    lines = text.split("\n")
    cut = lines.pop()  # "" when the file ends with a newline; else the line the run is writing
    by_step: dict[int, dict] = {}
    unreadable = repeated = 0
    for line in lines + ([cut] if cut else []):
        record = _record(line)
        if record is None:
            if line is cut:
                notes.append(f"the last line of {METRICS_FILE} is incomplete (the run is writing it): left out")
            elif line.strip():
                unreadable += 1
            continue
        repeated += record["step"] in by_step
        by_step[record["step"]] = record  # a resumed run logs again the steps after its checkpoint: the newest counts
    if unreadable:
        notes.append(f"{unreadable} unreadable line{'s' if unreadable > 1 else ''} of {METRICS_FILE} left out")
    if repeated:
        notes.append(f"{repeated} step{'s' if repeated > 1 else ''} logged again by a resumed run: the newer values shown")
    return [by_step[step] for step in sorted(by_step)]


def _record(line: str) -> dict | None:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("step"), int):
        return None
    return record


def _matches(folder: Path, pattern: re.Pattern) -> list[re.Match]:
    if not folder.is_dir():
        return []
    return [m for m in map(pattern.match, (p.name for p in folder.iterdir())) if m]


def _read_grids(folder: Path, notes: list[str]) -> tuple[list[tuple[int, bytes]], int]:
    found = {int(m.group(1)): folder / m.group(0) for m in _matches(folder, _GRID)}
    steps = sorted(found)
    chosen = steps
    if len(steps) > MAX_GRIDS:
        chosen = [steps[round(i * (len(steps) - 1) / (MAX_GRIDS - 1))] for i in range(MAX_GRIDS)]
        notes.append(f"{MAX_GRIDS} of the {len(steps)} sample grids shown, evenly spaced")
    grids = []
    for step in chosen:
        try:
            data = found[step].read_bytes()
            with Image.open(io.BytesIO(data)) as image:  # the bytes embedded, checked
                image.verify()
        except FileNotFoundError:
            continue  # gone since the listing
        except (OSError, SyntaxError, ValueError) as error:
            notes.append(f"{found[step].name} is not a readable PNG ({error}): left out")
            continue
        grids.append((step, data))
    return grids, len(steps)
