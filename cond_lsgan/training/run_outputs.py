"""The files of a run folder that only its training process writes, kept out of every other command's outputs.

`check_outputs_apart` compares outputs with the files a command reads; a run folder is
also read later, by a resume or a report, and is written meanwhile by a live `train`.
So `report`, `sample`, `generate`, `styles`, `evaluate`, `audit` and `experiment` refuse
an output that is a run folder, its lock, config, log or metrics, or lies under its
`checkpoints/`, `samples/` or `tensorboard/` (a report written as `checkpoints/step_*.pt`
would turn the newest checkpoint into HTML; one written as `.lock` would swap the lock's
file). Other names in a run folder stay open: `report RUN --out RUN/report.html` is fine.

A folder is a run folder when two of its `.lock` (every `train` makes one), config.json
and `checkpoints/` are there (two, so that another program's lone `.lock` does not
count). Paths are compared after os.path.realpath, so symbolic links and `..` lead to
the same answer.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from ..data_tools_api import InputError
from .run_folder import CONFIG_FILE, LOCK_NAME, RUN_FILES

# Written by train alone (checkpoint.checkpoint_dir, loop.py); named here so that `report`, which
# checks them, still starts without torch.
CHECKPOINTS, RUN_SUBFOLDERS = "checkpoints", ("checkpoints", "samples", "tensorboard")
RUN_TOP_FILES = (LOCK_NAME, *RUN_FILES)

OutputPaths = str | os.PathLike | list | tuple | None


def is_run_folder(folder: Path) -> bool:
    """Whether `folder` is (or was) the --out of a `cond-lsgan train`."""
    lock, config, checkpoints = (folder / LOCK_NAME).is_file(), (folder / CONFIG_FILE).is_file(), (folder / CHECKPOINTS).is_dir()
    return (lock and (config or checkpoints)) or (config and checkpoints)


def run_part(path: str | os.PathLike) -> tuple[Path, str] | None:
    """(run folder, what of it) when `path` is one of the parts of a run folder that train alone writes, else None."""
    real = Path(os.path.realpath(path))
    if real.is_dir() and is_run_folder(real):
        return real, "the run folder itself"
    for depth, folder in enumerate(real.parents):
        if not is_run_folder(folder):
            continue
        top = real.relative_to(folder).parts[0]
        if depth == 0 and top in RUN_TOP_FILES:
            return folder, f"its {top}"
        if top in RUN_SUBFOLDERS:
            return folder, f"its {top}/"
    return None


def check_outside_run_folders(outputs: Mapping[str, OutputPaths]) -> None:
    """InputError if an output of a command other than train is a part of a run folder that train writes."""
    for option, paths in outputs.items():
        listed = [paths] if isinstance(paths, (str, os.PathLike)) else [p for p in paths or () if p is not None]
        for path in listed:
            found = run_part(path)
            if found:
                folder, part = found
                given = listed[0] if path == listed[0] else f"{listed[0]} (which writes {path})"
                raise InputError(f"{option} {given} would write into the run folder {folder} ({part}), which only "
                                 "`cond-lsgan train` writes; choose a path outside it (a report or a grid may go "
                                 "beside them, e.g. RUN/report.html)")
