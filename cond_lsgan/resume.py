"""What a run continues from: its config (file or saved config.json) and its checkpoint.

A fresh run never overwrites a run folder that holds checkpoints; `--resume auto` takes
the newest intact one: a damaged newer checkpoint (checkpoint.DamagedCheckpoint) is named
in the log and left where it is, and the run continues from the one before. A checkpoint
given by path must be intact. A checkpoint continues only with the same model settings,
class table and image size as the data it is resumed on.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .checkpoint import RUN_KEYS, DamagedCheckpoint, checkpoint_dir, list_checkpoints, load_checkpoint
from .config import Config, apply_overrides, config_from_dict, load_config
from .run_folder import CONFIG_FILE
from .shared import ClassTable, InputError


def resolve_run_config(config_path: str | Path | None, run_dir: str | Path, resume: str | None,
                       overrides: list[str]) -> Config:
    """The config file plus overrides; without a file, a resumed run reuses its saved config.json."""
    if config_path is not None:
        return load_config(config_path, overrides)
    saved = Path(run_dir) / CONFIG_FILE
    if not (resume and saved.is_file()):
        raise InputError("--config is required (it may be left out only with --resume on a run folder that has config.json)")
    try:
        values = json.loads(saved.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{saved}: not valid JSON ({error})") from None
    return apply_overrides(config_from_dict(values, origin=str(saved)), overrides)


def load_resume_checkpoint(run_dir: Path, resume: str | None, device: torch.device) -> tuple[Path | None, dict | None, list[str]]:
    """The checkpoint a run continues from, its loaded state, and notes for the log ((None, None, []) on a fresh run).

    `--resume auto` -> the run's newest intact checkpoint; a path -> that file.
    """
    if resume is None:
        if list_checkpoints(run_dir):
            raise InputError(f"{run_dir} already holds checkpoints; pass --resume auto to continue it or choose a new --out")
        return None, None, []
    if resume != "auto":
        return Path(resume), load_checkpoint(resume, device, require=RUN_KEYS), []
    notes = []
    for path in reversed(list_checkpoints(run_dir)):
        try:
            return path, load_checkpoint(path, device, require=RUN_KEYS), notes
        except DamagedCheckpoint as error:
            notes.append(f"skipped {error}; the file is left as it is")
    if notes:
        raise InputError(f"no intact checkpoint in {checkpoint_dir(run_dir)}: {len(notes)} damaged, the newest: {notes[0]}; "
                         "to start afresh, choose a new --out")
    return None, None, []


def check_class_count(config: Config, classes: ClassTable) -> int:
    pinned = config.model.num_classes
    if pinned and pinned != len(classes):
        raise InputError(f"model.num_classes is {pinned} but the data's class table has {len(classes)} classes")
    return len(classes)


def check_compatible(state: dict, config: Config, classes: ClassTable, image_size: int, path: Path) -> None:
    """A checkpoint can continue only with the same model and the same class table."""
    saved = config_from_dict(state["config"], origin=str(path))
    if saved.model != config.model:
        differences = "; ".join(f"model.{name} {getattr(saved.model, name)!r} in the checkpoint, {getattr(config.model, name)!r} in the config"
                                for name in vars(saved.model) if getattr(saved.model, name) != getattr(config.model, name))
        raise InputError(f"{path} was trained with model settings other than the config's: {differences}")
    if state["classes"]["text"] != classes.text:
        raise InputError(f"{path} was trained on a different class table ({len(state['classes']['text'])} classes) than the data ({len(classes)})")
    if state["image_size"] != image_size:
        raise InputError(f"{path} was trained on {state['image_size']}px images; the data has {image_size}px")
