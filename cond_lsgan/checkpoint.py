"""Checkpoints: everything needed to continue a run exactly, saved atomically, loaded safely.

A checkpoint is a dict of plain data and tensors (no pickled classes), so it loads with
`torch.load(weights_only=True)`:

    format, version         "cond-lsgan-checkpoint", 2
    digest                  sha256 of everything else in the file (`content_digest`), checked on load
    step                    optimisation steps done
    config                  the resolved Config as nested dicts
    classes                 {"text": [...], "codepoint": [...]}, the data's class table
    image_size              int
    generator, generator_ema, discriminator       state dicts (unwrapped modules)
    optimizer_g, optimizer_d                      optimizer state dicts
    grad_scaler             fp16 gradient scaler state (empty for bf16 and fp32 runs)
    rng                     {"torch": CPU RNG state, "noise": noise generator state, "cuda": [...]}

`run_state` builds this dict from a run's `TrainingStep` (the one place it is made, so
its keys are listed once) and `save_checkpoint` adds format, version and digest.
Files are `<run>/checkpoints/step_0000300.pt`; they are written under a temporary name
and renamed, so a crash mid-save leaves the previous checkpoint intact.

Why a digest: torch does not check the CRCs of its zip archive, so bytes changed inside
a tensor record (a bad disk, a bad copy) load silently and a run would continue from
garbage. The digest covers names, plain values and every tensor's dtype, shape and
bytes, and a mismatch is a `DamagedCheckpoint`, which `--resume auto` answers by falling
back to an older checkpoint (training/resume.py). Version 1 files (no digest) still load, unchecked.
"""

from __future__ import annotations

import hashlib
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from .data_tools_api import MAX_IMAGE_SIZE, InputError, atomic_output

FORMAT = "cond-lsgan-checkpoint"
VERSION = 2  # 2: a content digest
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
    return [p for _, p in sorted(found) if p.is_file()]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    checkpoints = list_checkpoints(run_dir)
    return checkpoints[-1] if checkpoints else None


class DamagedCheckpoint(InputError):
    """The file is not the checkpoint that was written: unreadable, truncated, or its content changed."""


def content_digest(state: dict[str, Any]) -> str:
    """sha256 over `state` but its "digest" entry: keys, types and values in order, tensors as dtype, shape and bytes.

    Computed on the values (not the file), so it holds whichever device the tensors are
    loaded to and whatever zip layout torch writes.
    """
    digest = hashlib.sha256()
    _feed(digest, {key: value for key, value in state.items() if key != "digest"})
    return digest.hexdigest()


def _feed(digest: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        digest.update(f"tensor {tensor.dtype} {tuple(tensor.shape)}\n".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(value, dict):
        digest.update(f"dict {len(value)}\n".encode())
        for key, item in value.items():
            _feed(digest, key)
            _feed(digest, item)
    elif isinstance(value, (list, tuple)):
        digest.update(f"{type(value).__name__} {len(value)}\n".encode())
        for item in value:
            _feed(digest, item)
    else:  # str, int, float, bool, None: repr is exact for all of them
        digest.update(f"{type(value).__name__} {value!r}\n".encode())


def check_digest(path: Path, state: dict[str, Any], what: str = "checkpoint") -> None:
    """DamagedCheckpoint unless `state` matches the digest it was written with."""
    if state.get("digest") != content_digest(state):
        reason = "no content digest" if "digest" not in state else "its content differs from what was written"
        raise DamagedCheckpoint(f"{path}: damaged {what} ({reason}; the file was changed or corrupted after it was saved)")


def run_state(step: int, config: Any, classes: Any, image_size: int, trainer: Any) -> dict[str, Any]:
    """A run checkpoint's content after `step` steps: the run's config (a Config), class table and image size, and
    `trainer`'s state (`training_state`)."""
    return {
        "step": step,
        "config": config.to_dict(),
        "classes": classes.to_dict(),
        "image_size": image_size,
        **training_state(trainer),
    }


def training_state(trainer: Any) -> dict[str, Any]:
    """What resume restores of a training.step.TrainingStep: its unwrapped modules, optimisers, gradient scaler and
    RNG states (passed in, not imported: the training package builds on this module, not the other way round)."""
    return {
        "generator": trainer.generator.state_dict(),
        "generator_ema": trainer.generator_ema.state_dict(),
        "discriminator": trainer.discriminator.state_dict(),
        "optimizer_g": trainer.optimizer_g.state_dict(),
        "optimizer_d": trainer.optimizer_d.state_dict(),
        "grad_scaler": trainer.scaler.state_dict(),
        "rng": rng_states(trainer.noise_rng),
    }


def rng_states(noise_rng: torch.Generator) -> dict[str, Any]:
    """The checkpoint's "rng": torch's CPU (and CUDA) RNG states and the noise generator's."""
    states = {"torch": torch.get_rng_state(), "noise": noise_rng.get_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any], noise_rng: torch.Generator) -> None:
    """Put back what `rng_states` saved; the CUDA states only on a machine with as many CUDA devices."""
    torch.set_rng_state(states["torch"].cpu())
    noise_rng.set_state(states["noise"].cpu())
    if "cuda" in states and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in states["cuda"]])


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Write `state` to `path` atomically (temporary file beside it, then rename), with its content digest."""
    state = {"format": FORMAT, "version": VERSION, **state}
    state["digest"] = content_digest(state)
    with atomic_output(path) as temporary, open(temporary, "wb") as handle:
        # Through a Python file, so a failed write (disk full) keeps its OSError as the
        # RuntimeError's context and atomic_output reports it; torch's own writer loses it.
        torch.save(state, handle)


def prune_checkpoints(run_dir: str | Path, keep: int, intact: Path | None = None) -> list[Path]:
    """Delete all but the newest `keep` checkpoints, never `intact` (the one just written); the deleted, for the log.

    Newer files may be damaged ones that a resume fell back from (left where they are when
    the run does not reach their step); counting them must not cost the run its only good
    checkpoint.
    """
    deleted = []
    for old in list_checkpoints(run_dir)[:-keep]:
        if intact is None or old != Path(intact):
            old.unlink(missing_ok=True)
            deleted.append(old)
    return deleted


def checkpoint_step(path: Path) -> int | None:
    """The step in a checkpoint's file name (step_0000300.pt -> 300), None for another name."""
    found = _NAME.match(Path(path).name)
    return int(found.group(1)) if found else None


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu", require: tuple[str, ...] = ()) -> dict[str, Any]:
    """Load and check a checkpoint; any problem is one InputError line.

    The entries a run checkpoint has are checked for type where present, and those in
    `require` (RUN_KEYS to resume, GENERATOR_KEYS to generate) must be there.
    """
    path = Path(path)
    state = read_versioned(path, "checkpoint", FORMAT, VERSION, device, digest_since=2)
    _check_entries(path, state, require)
    return state


def read_versioned(path: Path, what: str, format_: str, version: int, device: torch.device | str = "cpu", *,
                   oldest: int = 0, digest_since: int | None = None, make: str | None = None) -> dict[str, Any]:
    """The dict that torch.save wrote at `path` for a file of `format_`, loaded without unpickling code, of a version
    this code reads (`oldest` to `version`; no "version" reads as 0); a missing, foreign, unreadable, newer or
    damaged file is one line naming `what`.

    The one reader of the versioned files (checkpoints, judges, styles files), so all of them refuse the same files
    with the same words. From version `digest_since` on (None: never) the content digest is checked here; `make`
    says how to make a right file, for a file of another format. Each caller checks its own entries.
    """
    noun = what if what.endswith(" file") else f"{what} file"
    if path.is_dir():
        raise InputError(f"{path} is a folder, not a {noun}")
    if not path.is_file():
        raise InputError(f"{what} not found: {path}")
    if not zipfile.is_zipfile(path):  # torch.save writes zip archives; anything else is damaged or foreign
        raise DamagedCheckpoint(f"{path}: not a readable {what} (not a PyTorch zip archive: truncated, or not a {noun} at all)")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(error))
        held = f"a {found.group(1)} object" if found else "objects"
        raise InputError(f"{path}: refused to load: it holds {held}, not only tensors and plain data "
                         "(loading it could run code from the file)") from None
    except (RuntimeError, zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
        raise DamagedCheckpoint(f"{path}: not a readable {what} ({(str(error).splitlines() or ['?'])[0]})") from None
    if not isinstance(state, dict) or state.get("format") != format_:
        raise InputError(f"{path}: not a cond-lsgan {what}" + (f" (make one with {make})" if make else ""))
    found = state.get("version", 0)
    if type(found) is not int or found < oldest:
        raise DamagedCheckpoint(f"{path}: damaged {what} (version is {state.get('version')!r})")
    if found > version:
        raise InputError(f"{path}: {what} version {found} is newer than this cond-lsgan reads ({version}); upgrade")
    if digest_since is not None and found >= digest_since:
        check_digest(path, state, what)
    return state


def _check_entries(path: Path, state: dict[str, Any], require: tuple[str, ...]) -> None:
    def fail(problem: str) -> InputError:
        return DamagedCheckpoint(f"{path}: damaged checkpoint ({problem})")

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
