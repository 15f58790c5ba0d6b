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

from data_tools.atomic import atomic_output
from data_tools.errors import InputError

FORMAT = "cond-lsgan-checkpoint"
VERSION = 1
_NAME = re.compile(r"^step_(\d+)\.pt$")


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
    with atomic_output(path) as temporary:
        torch.save(state, temporary)


def prune_checkpoints(run_dir: str | Path, keep: int) -> None:
    """Delete all but the newest `keep` checkpoints."""
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Load and check a checkpoint; any problem is one InputError line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint not found: {path}")
    if not zipfile.is_zipfile(path):  # torch.save writes zip archives; anything else is damaged or foreign
        raise InputError(f"{path}: not a readable checkpoint (not a PyTorch zip archive; truncated or another kind of file)")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as error:
        raise InputError(f"{path}: refused to load (it holds objects other than tensors and plain data: {str(error).splitlines()[0]})") from None
    except (RuntimeError, zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
        raise InputError(f"{path}: not a readable checkpoint ({str(error).splitlines()[0]})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise InputError(f"{path}: not a cond-lsgan checkpoint")
    if state.get("version", 0) > VERSION:
        raise InputError(f"{path}: checkpoint version {state['version']} is newer than this cond-lsgan reads ({VERSION}); upgrade")
    return state


def file_digest(path: str | Path) -> str:
    """sha256 of a file, recorded in what is generated from it."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
