"""Writing a run's checkpoints: weight check, atomic save, pruning, and a log line for each change.

A checkpoint is written only of weights that are usable (finite, and D's scores of G's
fixed grid batch finite), decided alike on every rank; rank 0 alone writes the file,
whose content `checkpoint.run_state` builds. Nothing is written over or deleted without a
log line, and every error that stops an unstable run names the newest good checkpoint
the run leaves behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from torch import Tensor

from ..checkpoint import checkpoint_path, prune_checkpoints, run_state, save_checkpoint
from ..config import Config
from ..data_tools_api import ClassTable, InputError
from .distributed import max_over_ranks
from .step import TrainingStep

LOWER = "lower train.lr_g and train.lr_d or check the data and the loss settings"


class Checkpointer:
    """The checkpoints of one run of `trainer`: `save(step)` checks, writes and prunes; `newest` is the last one.

    `probe` is the (z, labels) batch the weight check runs G and D on; `earlier` says, in
    a log line, where a file of a step this run reaches again came from.
    """

    def __init__(self, run_dir: Path, trainer: TrainingStep, config: Config, classes: ClassTable, image_size: int,
                 probe: tuple[Tensor, Tensor | None], line: Callable[[str], None], newest: Path | None, earlier: str) -> None:
        self.run_dir, self.trainer, self.config, self.classes, self.image_size = run_dir, trainer, config, classes, image_size
        self.probe, self.line, self.earlier = probe, line, earlier
        self.keep = config.train.keep_checkpoints
        self.newest = newest  # the newest good checkpoint of the run (the one resumed from, at first), None if none

    def save(self, step: int) -> None:
        """Checkpoint the weights after `step` steps, or raise if they are not usable (every rank alike)."""
        trainer = self.trainer
        problem = trainer.unusable_weights(*self.probe)
        if max_over_ranks(int(problem is not None), trainer.ranks, trainer.device):  # every rank stops alike
            raise self.stop(f"step {step}: the losses were finite but the updated weights are not usable "
                            f"({problem or 'on another rank'}); not saved")
        self.newest = checkpoint_path(self.run_dir, step)
        if not trainer.ranks.main:  # rank 0 alone writes the run folder
            return
        if self.newest.exists():
            self.line(f"writing over {self.newest}: a checkpoint of step {step} {self.earlier}")
        save_checkpoint(run_state(step, self.config, self.classes, self.image_size, trainer), self.newest)
        for pruned in prune_checkpoints(self.run_dir, self.keep, intact=self.newest):
            self.line(f"pruned {pruned} (train.keep_checkpoints={self.keep})")

    def stop(self, what: str) -> InputError:
        """The error that stops an unstable run: `what` happened, which checkpoint is left, what to try."""
        kept = f"the newest good checkpoint is {self.newest}" if self.newest else "no checkpoint was written"
        return InputError(f"{what}; {kept}; {LOWER}")
