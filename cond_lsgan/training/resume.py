"""What a run continues from: its config (file or saved config.json) and its checkpoint.

A fresh run never overwrites a run folder that holds checkpoints; `--resume auto` takes
the newest intact one: a damaged newer checkpoint (checkpoint.DamagedCheckpoint) is named
in the log and, when the run will train past its step again, moved aside to
`step_N.pt.damaged` (never written over, never left among the new branch's files); one
beyond `train.steps` stays where it is. The run continues from the one before. A
checkpoint given by path must be intact, and continues in its own folder only from the
newest step there: resuming an older one in place would write the newer ones over with a
new branch, so that is refused, naming them; given a new `--out` it branches there (the
config, without --config, is the checkpoint's own) and its folder is not written. A
checkpoint continues only with the same model settings, class table and image size as
the data it is resumed on.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ..checkpoint import RUN_KEYS, DamagedCheckpoint, checkpoint_dir, checkpoint_step, list_checkpoints, load_checkpoint
from ..config import Config, apply_overrides, config_from_dict, load_config
from ..data_tools_api import ClassTable, InputError, write_error
from .run_folder import CONFIG_FILE

NAMED = 5  # newer checkpoints named in a refusal; more are counted


def resolve_run_config(config_path: str | Path | None, run_dir: str | Path, resume: str | None,
                       overrides: list[str]) -> Config:
    """The config file plus overrides; without a file, a resumed run reuses its saved config.json, a branch its checkpoint's."""
    if config_path is not None:
        return load_config(config_path, overrides)
    saved = Path(run_dir) / CONFIG_FILE
    if resume and saved.is_file():
        try:
            values = json.loads(saved.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise InputError(f"{saved}: not valid JSON ({error})") from None
        return apply_overrides(config_from_dict(values, origin=str(saved)), overrides)
    if resume and resume != "auto":  # a branch into a new folder: the config the checkpoint was trained with
        values = load_checkpoint(resume, "cpu", require=RUN_KEYS)["config"]
        return apply_overrides(config_from_dict(values, origin=str(resume)), overrides)
    raise InputError("--config is required (it may be left out with --resume auto on a run folder that has config.json, "
                     "or with --resume CHECKPOINT)")


def load_resume_checkpoint(run_dir: Path, resume: str | None,
                           device: torch.device) -> tuple[Path | None, dict | None, list[str], list[Path]]:
    """The checkpoint a run continues from, its loaded state, notes for the log, and the damaged newer checkpoints skipped.

    `--resume auto` -> the run's newest intact checkpoint; a path -> that file, if it is the
    newest of `run_dir` or a branch into a folder without checkpoints. (None, None, [], [])
    on a fresh run.
    """
    if resume is None:
        if list_checkpoints(run_dir):
            raise InputError(f"{run_dir} already holds checkpoints; pass --resume auto to continue it or choose a new --out")
        return None, None, [], []
    if resume != "auto":
        path = Path(resume)
        state = load_checkpoint(path, device, require=RUN_KEYS)
        return path, state, _check_branch(run_dir, path, state["step"]), []
    notes, damaged = [], []
    for path in reversed(list_checkpoints(run_dir)):
        try:
            return path, load_checkpoint(path, device, require=RUN_KEYS), notes, damaged
        except DamagedCheckpoint as error:
            notes.append(f"skipped {error}")
            damaged.append(path)
    if notes:
        raise InputError(f"no intact checkpoint in {checkpoint_dir(run_dir)}: {len(notes)} damaged, the newest: {notes[0]}; "
                         "to start afresh, choose a new --out")
    return None, None, [], []


def _check_branch(run_dir: Path, path: Path, step: int) -> list[str]:
    """Refuse a checkpoint that would write over newer ones of `run_dir`, or mix another run into it; a note for a branch."""
    existing = list_checkpoints(run_dir)
    if not any(_same_file(path, other) for other in existing):
        if existing:
            raise InputError(f"{run_dir} already holds checkpoints (the newest {existing[-1].name}) and {path} is not one of "
                             "them; continuing it there would mix two runs in one folder; to branch from it give a new "
                             f"--out, or continue {run_dir} with --resume auto")
        source = path.parent.parent if path.parent.name == checkpoint_dir("").name else path.parent
        return [f"branching from {path} at step {step}: a new run in {run_dir}; {source} is not written"]
    newer = [other.name for other in existing if checkpoint_step(other) > step]
    if newer:
        named = ", ".join(newer[:NAMED]) + (f" and {len(newer) - NAMED} more" if len(newer) > NAMED else "")
        raise InputError(f"{run_dir} holds checkpoints newer than {path} (step {step}): {named}; resuming there would write "
                         "over them; to branch from it give a new --out, or continue the newest with --resume auto")
    return []


def set_aside_damaged(damaged: list[Path], start: int, steps: int) -> list[str]:
    """Move the damaged checkpoints a run from `start` to `steps` trains past to `<name>.damaged`; notes for the log.

    Called once the run is sure to go ahead (after every check of its inputs), so a refused
    run renames nothing. A name already taken gets `.damaged.2` and so on: nothing is replaced.
    """
    notes = []
    for path in damaged:
        step = checkpoint_step(path)
        if step > steps:
            notes.append(f"left damaged {path} where it is: this run ends at step {steps}, before it")
            continue
        aside, count = path.with_name(path.name + ".damaged"), 1
        while aside.exists():
            count += 1
            aside = path.with_name(f"{path.name}.damaged.{count}")
        try:
            os.rename(path, aside)
        except OSError as error:
            raise write_error(aside, error) from None
        notes.append(f"moved damaged {path} aside to {aside}: this run trains past step {step} again "
                     f"(from step {start} to {steps})")
    return notes


def _same_file(one: Path, other: Path) -> bool:
    try:
        return os.path.samefile(one, other)
    except OSError:
        return False


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
