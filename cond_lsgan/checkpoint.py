"""Checkpoints: everything needed to continue a run exactly, saved atomically, loaded safely.

A checkpoint is a dict of plain data and tensors (no pickled classes), so it loads with
`torch.load(weights_only=True)`:

    format, version         "cond-lsgan-checkpoint", 1
    step                    optimisation steps done
    config                  the resolved Config as nested dicts
    classes                 {"text": [...], "codepoint": [...]}, the data's class table
    image_size              int
    generator, generator_ema, discriminator       state dicts (unwrapped modules)
    optimizer_g, optimizer_d                      optimizer state dicts
    grad_scaler             fp16 gradient scaler state (empty for bf16 and fp32 runs)
    rng                     {"torch": CPU RNG state, "noise": noise generator state, "cuda": [...]}

Files are `<run>/checkpoints/step_0000300.pt`; they are written under a temporary name
and renamed, so a crash mid-save leaves the previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from .shared import MAX_IMAGE_SIZE, InputError, atomic_output

FORMAT = "cond-lsgan-checkpoint"
VERSION = 1
_NAME = re.compile(r"^step_(\d+)\.pt$")
# What `load_checkpoint(require=...)` can insist on: all of a run checkpoint (to resume), or what generating needs.
RUN_KEYS = ("step", "config", "classes", "image_size", "generator", "generator_ema", "discriminator",
            "optimizer_g", "optimizer_d", "rng")
GENERATOR_KEYS = ("step", "config", "classes", "image_size", "generator", "generator_ema")
_DICT_KEYS = ("config", "classes", "generator", "generator_ema", "discriminator", "optimizer_g", "optimizer_d", "rng")


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def checkpoint_path(run_dir: str | Path, step: int) -> Path:
    return checkpoint_dir(run_dir) / f"step_{step:07d}.pt"


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """The run's checkpoints, oldest first (by step number, not by file time)."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    checkpoints = list_checkpoints(run_dir)
    return checkpoints[-1] if checkpoints else None


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Write `state` to `path` atomically (temporary file beside it, then rename)."""
    state = {"format": FORMAT, "version": VERSION, **state}
    with atomic_output(path) as temporary, open(temporary, "wb") as handle:
        # Through a Python file, so a failed write (disk full) keeps its OSError as the
        # RuntimeError's context and atomic_output reports it; torch's own writer loses it.
        torch.save(state, handle)


def prune_checkpoints(run_dir: str | Path, keep: int) -> None:
    """Delete all but the newest `keep` checkpoints."""
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu", require: tuple[str, ...] = ()) -> dict[str, Any]:
    """Load and check a checkpoint; any problem is one InputError line.

    The entries a run checkpoint has are checked for type where present, and those in
    `require` (RUN_KEYS to resume, GENERATOR_KEYS to generate) must be there.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint not found: {path}")
    if not zipfile.is_zipfile(path):  # torch.save writes zip archives; anything else is damaged or foreign
        raise InputError(f"{path}: not a readable checkpoint (not a PyTorch zip archive; truncated or another kind of file)")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(error))
        what = f"a {found.group(1)} object" if found else "objects"
        raise InputError(f"{path}: refused to load: it holds {what}, not only tensors and plain data "
                         "(loading it could run code from the file)") from None
    except (RuntimeError, zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
        raise InputError(f"{path}: not a readable checkpoint ({str(error).splitlines()[0]})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise InputError(f"{path}: not a cond-lsgan checkpoint")
    if type(state.get("version", 0)) is not int:
        raise InputError(f"{path}: damaged checkpoint (version is {state['version']!r})")
    if state.get("version", 0) > VERSION:
        raise InputError(f"{path}: checkpoint version {state['version']} is newer than this cond-lsgan reads ({VERSION}); upgrade")
    _check_entries(path, state, require)
    return state


def _check_entries(path: Path, state: dict[str, Any], require: tuple[str, ...]) -> None:
    def fail(problem: str) -> InputError:
        return InputError(f"{path}: damaged checkpoint ({problem})")

    missing = [key for key in require if key not in state]
    if missing:
        raise fail(f"no {', '.join(missing)}")
    for key in _DICT_KEYS:
        if key in state and not isinstance(state[key], dict):
            raise fail(f"{key} is a {type(state[key]).__name__}, not a dict")
    if "step" in state and not (type(state["step"]) is int and state["step"] >= 0):
        raise fail(f"step is {state['step']!r}")
    if "image_size" in state and not (type(state["image_size"]) is int and 1 <= state["image_size"] <= MAX_IMAGE_SIZE):
        raise fail(f"image_size is {state['image_size']!r}")
    if "classes" in state:
        classes = state["classes"]
        text, codepoint = classes.get("text"), classes.get("codepoint")
        if not (isinstance(text, list) and isinstance(codepoint, list) and len(text) == len(codepoint) and text
                and all(isinstance(t, str) for t in text) and all(type(c) is int for c in codepoint)):
            raise fail("the class table is not a list of names with code points")


def mismatch_detail(error: RuntimeError) -> str:
    """The first mismatch a failed `load_state_dict` names (not its heading), for a one-line message."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    detail = lines[1] if len(lines) > 1 else (lines or ["?"])[0]
    return detail if len(detail) <= 200 else detail[:200] + " ..."


def file_digest(path: str | Path) -> str:
    """sha256 of a file, recorded in what is generated from it."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
