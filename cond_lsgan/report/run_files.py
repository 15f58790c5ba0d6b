"""What a run folder holds, read for a report while the run may still be writing it.

A live run appends to metrics.jsonl (its last line may be cut off), adds grids and
checkpoints, and may have written no grid yet; a resumed run logs again the steps after
its checkpoint. So nothing here insists: a cut line and a step logged twice become notes
for the page, and the newest record of a step wins. A DDP run's folder is written by rank
0 alone and reads the same. What a run never writes (an unreadable line, a step that is
no step count, a config.json that is no table, a damaged grid, a grid whose header claims
more pixels than any sample grid has) becomes a problem: noted on the page, left out, the
rest read. A grid's size is read from its PNG header before Pillow decodes it, so a
decompression bomb is refused here, not by Pillow's process-wide limit (which is left
alone). What is refused is a path that is no run folder at all, and a config.json that is
not JSON (it is written atomically, so that is damage, not a run in progress).
"""

from __future__ import annotations

import io
import json
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from ..data_tools_api import InputError
from ..training.run_folder import CONFIG_FILE, LOCK_NAME, LOG_FILE, METRICS_FILE
from .page import shown

SAMPLES, CHECKPOINTS = "samples", "checkpoints"
MARKERS = (CONFIG_FILE, METRICS_FILE, LOG_FILE, SAMPLES, CHECKPOINTS, LOCK_NAME)  # any of them makes a run folder
MAX_GRIDS = 60  # grids embedded; a longer run shows this many, evenly spaced, first and last included
LOG_LINES = 30  # the end of log.txt shown
MAX_STEP = 2**53  # steps past this are not whole numbers a float (or a browser) holds exactly
MAX_GRID_PIXELS = 1 << 26  # 8192 x 8192; a sample grid of 1,024 images is a few megapixels. Below Pillow's bomb warning
MAX_GRID_BYTES = 64 << 20  # a PNG file larger than this is not a sample grid
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
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
    notes: list[str] = field(default_factory=list)  # what a live or resumed run leaves out, and why
    problems: list[str] = field(default_factory=list)  # what the files hold that cannot be used (damage): left out

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
    problems: list[str] = []
    config = _read_config(path / CONFIG_FILE, problems)
    metrics = _read_metrics(path / METRICS_FILE, notes, problems)
    grids, grid_count = _read_grids(path / SAMPLES, notes, problems)
    log_text = _read_text(path / LOG_FILE)
    checkpoints = sorted(int(m.group(1)) for m in _matches(path / CHECKPOINTS, _CHECKPOINT))
    return RunFiles(path, config, metrics, grids, grid_count,
                    log_text.splitlines()[-LOG_LINES:] if log_text else [], checkpoints, notes, problems)



def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise InputError(f"cannot read {path}: {error.strerror or error}") from None


def _read_config(path: Path, problems: list[str]) -> dict | None:
    text = _read_text(path)
    if text is None:
        return None
    try:
        config = json.loads(text)
    except (ValueError, RecursionError) as error:  # ValueError: also an integer past Python's 4,300 digits
        raise InputError(f"{path}: not valid JSON ({_reason(error)})") from None
    if not isinstance(config, dict):
        problems.append(f"{CONFIG_FILE} is {shown(config)}, not a table of sections: not shown")
        return {}
    return config


def _reason(error: BaseException) -> str:
    return "nested too deeply" if isinstance(error, RecursionError) else str(error)


def _read_metrics(path: Path, notes: list[str], problems: list[str]) -> list[dict]:
    text = _read_text(path)
    if not text:
        return []
    lines = text.split("\n")
    cut = lines.pop()  # "" when the file ends with a newline; else the line the run is writing
    by_step: dict[int, dict] = {}
    unreadable = repeated = no_step = 0
    for line in lines + ([cut] if cut else []):
        record = _record(line)
        if record is None:
            if line is cut:
                notes.append(f"the last line of {METRICS_FILE} is incomplete (the run is writing it): left out")
            elif line.strip():
                unreadable += 1
            continue
        if not _is_step(record["step"]):
            no_step += 1
            continue
        repeated += record["step"] in by_step
        by_step[record["step"]] = record  # a resumed run logs again the steps after its checkpoint: the newest counts
    if unreadable:
        problems.append(f"{unreadable} unreadable line{'s' if unreadable > 1 else ''} of {METRICS_FILE} left out")
    if no_step:
        problems.append(f"{no_step} line{'s' if no_step > 1 else ''} of {METRICS_FILE} whose step is not a whole number "
                        f"from 0 to {MAX_STEP:,}: left out")
    if repeated:
        notes.append(f"{repeated} step{'s' if repeated > 1 else ''} logged again by a resumed run: the newer values shown")
    return [by_step[step] for step in sorted(by_step)]


def _record(line: str) -> dict | None:
    """The line's JSON object, if it is one with a step (of any value); None if not."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):  # not JSON, an integer past 4,300 digits, nested too deeply
        return None
    return record if isinstance(record, dict) and "step" in record else None


def _is_step(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_STEP


def _matches(folder: Path, pattern: re.Pattern) -> list[re.Match]:
    if not folder.is_dir():
        return []
    return [m for m in map(pattern.match, (p.name for p in folder.iterdir())) if m]


def _read_grids(folder: Path, notes: list[str], problems: list[str]) -> tuple[list[tuple[int, bytes]], int]:
    found = {int(m.group(1)): folder / m.group(0) for m in _matches(folder, _GRID)}
    steps = sorted(found)
    chosen = steps
    if len(steps) > MAX_GRIDS:
        chosen = [steps[round(i * (len(steps) - 1) / (MAX_GRIDS - 1))] for i in range(MAX_GRIDS)]
        notes.append(f"{MAX_GRIDS} of the {len(steps)} sample grids shown, evenly spaced")
    grids = []
    for step in chosen:
        try:
            data = _grid_bytes(found[step])
        except FileNotFoundError:
            continue  # gone since the listing
        except _Unusable as problem:
            problems.append(f"{found[step].name} {problem}: left out")
            continue
        grids.append((step, data))
    return grids, len(steps)


class _Unusable(Exception):
    """Why a grid's file is left out, as the page says it."""


def _grid_bytes(path: Path) -> bytes:
    """The file's PNG bytes, decoded once to check them; _Unusable if they are not a sample grid the page can show.

    The pixel count comes from the IHDR chunk, read here, so Pillow never sees a header
    that would trip its decompression-bomb check (an error, or only a warning, by its
    process-wide MAX_IMAGE_PIXELS); its bomb error is still caught, for a process that
    lowered that limit.
    """
    try:
        if path.stat().st_size > MAX_GRID_BYTES:
            raise _Unusable(f"is {path.stat().st_size:,} bytes, more than a sample grid has (at most {MAX_GRID_BYTES:,})")
        data = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as error:
        raise _Unusable(f"cannot be read ({error.strerror or error})") from None
    if len(data) < 24 or data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR":
        raise _Unusable("is not a readable PNG (no PNG header)")
    width, height = struct.unpack(">II", data[16:24])
    if width * height > MAX_GRID_PIXELS:
        raise _Unusable(f"claims {width:,} × {height:,} pixels, more than a sample grid has (at most {MAX_GRID_PIXELS:,})")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()  # chunk CRCs and the end of the file
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # the pixels, all there
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        reason = "not an image Pillow knows" if isinstance(error, Image.UnidentifiedImageError) else str(error)
        raise _Unusable(f"is not a readable PNG ({reason})") from None
    return data
