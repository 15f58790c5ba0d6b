"""The training loop: `train`, read top to bottom.

Set-up (device, data, a `TrainingStep` of models and optimisers, resume) -> loop (batch,
step, EMA) -> at intervals, metrics, sample grids and checkpoints in the run folder:

    <run>/config.json          the resolved config
    <run>/metrics.jsonl        one line per log interval: step, losses, images/s
    <run>/log.txt              the plain log lines
    <run>/samples/step_*.png   grids from a fixed noise batch, EMA generator
    <run>/checkpoints/step_*.pt
    <run>/tensorboard/         the metrics and grids as TensorBoard events (train.tensorboard, tensorboard_log.py)
    <run>/.lock                who is training in this folder (run_folder.py)

One step is a `TrainingStep` (step.py); this module adds data, files, signals and logs:
`RunLog` (log.txt, metrics.jsonl, TensorBoard, the terminal), `_SampleGrid`, `_BadSteps`,
and a `Checkpointer` (checkpointer.py: weight check, save, prune). Batch order is a function of the step (batches.py) and checkpoints hold weights, EMA,
optimisers, scaler, step and RNG states, so on the CPU a resumed run matches an
uninterrupted one weight for weight.

Distributed: under torchrun each process is one rank (distributed.py): `train.batch_size`
is the global batch, each rank takes its slice, logged losses are means over the ranks,
and rank 0 alone writes the run folder; checkpoints hold the unwrapped modules, so a run
moves between any numbers of ranks.

Faults: SIGTERM or SIGINT stops the loop at the next step boundary with a checkpoint
(ranks agree on the step by a small all-reduce each step) and exit code 128 + the signal
number; kill -9 leaves the newest complete checkpoint (written atomically) for `--resume
auto`. A step with a non-finite loss applies no update and writes no checkpoint, and
`train.max_bad_steps` of them in a row stop the run with an error; so do weights that are
not finite (or overflow D) when a checkpoint is due, a run that applied no update at all,
and a last step that could not be saved. One process writes a run folder at a time
(run_folder.py), and a run that fails before its first checkpoint removes the folder it
made. Nothing of a run is written over or deleted without a log line: each pruned
checkpoint, each grid or checkpoint of a step an earlier run had already reached (after
a fall-back past a damaged checkpoint, which resume.py first moves aside).
"""

from __future__ import annotations

import json
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ..config import Config, TrainConfig
from ..data_tools_api import ClassTable, GlyphSet, InputError, atomic_output, image_grid, read_store, save_png
from ..memory import check_training_memory
from ..models import model_to_pixels
from ..models.label_init import glyph_label_rows
from ..progress import print_line, terminal_bar
from ..runtime import precision_name, resolve_device
from ..selection import spread_classes
from . import distributed
from .batches import GlyphBatches
from .checkpointer import Checkpointer
from .distributed import Ranks, max_over_ranks
from .resume import check_class_count, check_compatible, load_resume_checkpoint, set_aside_damaged
from .run_folder import CONFIG_FILE, LOG_FILE, METRICS_FILE, RunLock
from .step import TrainingStep
from .tensorboard_log import RunBoard, require_tensorboard

@dataclass
class TrainResult:
    step: int
    checkpoint: Path | None  # the newest checkpoint of the run (None if none was ever written)
    run_dir: Path
    signal: int = 0  # the signal (SIGTERM, SIGINT) that stopped the run before train.steps; 0 if it finished
    main: bool = True  # rank 0 (the only rank of a one-process run), which reports


def train(config: Config, data_path: str | Path, run_dir: str | Path, resume: str | None = None) -> TrainResult:
    """Train (or continue) a GAN on a glyph store; returns where the last checkpoint went.

    Under torchrun this process is one rank of a data-parallel run (distributed.py): it
    joins the process group here and leaves it when the run ends, however it ends.
    """
    ranks = distributed.from_environment()
    distributed.per_rank_batch(config.train.batch_size, ranks)  # checked before any rank waits for the others
    if config.train.tensorboard:
        require_tensorboard()  # on every rank, before any waits for the others or the run folder is made
    device = distributed.rank_device(resolve_device(config.train.device), ranks)
    # Rank 0 holds the run folder's lock (run_folder.py) from before it reads a checkpoint until the run ends.
    with RunLock(run_dir, enabled=ranks.main) as lock, distributed.process_group(ranks, device), _StopSignals() as signals:
        return _train(config, Path(data_path), Path(run_dir), resume, ranks, device, signals, lock.notes)


def _train(config: Config, data_path: Path, run_dir: Path, resume: str | None, ranks: Ranks, device: torch.device,
           signals: _StopSignals, notes: list[str]) -> TrainResult:
    settings = config.train
    resume_from, state, resume_notes, damaged = load_resume_checkpoint(run_dir, resume, device)
    glyphs, num_classes, trainer, batches = _data_and_models(config, data_path, ranks, device)
    step = 0
    if state is not None:
        check_compatible(state, config, glyphs.classes, glyphs.image_size, resume_from)
        trainer.load_state_dict(state, resume_from)
        step = state["step"]
        if step > settings.steps:
            raise InputError(f"{resume_from} is at step {step}, beyond train.steps={settings.steps}")
    distributed.check_same_step(step, ranks, device)  # also: every rank has read its checkpoint
    distributed.seed_dropout(settings.seed, step, ranks)
    if ranks.main:  # rank 0 alone writes the run folder; the damaged checkpoints this run trains past go aside first
        resume_notes += set_aside_damaged(damaged, step, settings.steps)
        with atomic_output(run_dir / CONFIG_FILE) as temporary:  # atomic: a restarted rank may be reading it
            temporary.write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    log = RunLog(run_dir, settings, step, device, enabled=ranks.main)
    for note in [*notes, *resume_notes]:
        log.line(note)
    log.line(_start_line(config, step, resume_from, trainer, f"data {data_path}: {len(glyphs)} images, {num_classes} classes"))

    earlier = f"from before this run resumed at step {step}" if resume_from else "from before this run started"
    grid = _SampleGrid(trainer.generator, settings, num_classes, glyphs.classes, device, run_dir, log, earlier)
    checkpoints = Checkpointer(run_dir, trainer, config, glyphs.classes, glyphs.image_size, (grid.z, grid.labels),
                               log.line, resume_from, earlier)
    bad_steps = _BadSteps(settings.max_bad_steps, log, checkpoints)
    trainer.generator.train()
    trainer.discriminator.train()
    first_step = step
    try:
        while step < settings.steps:
            losses = trainer.step(*batches.batch(step), step)  # (d_loss, g_loss), means over the ranks
            step += 1
            bad_steps.count(step, trainer.skipped)  # a skipped update is logged; train.max_bad_steps in a row stop the run
            if not trainer.skipped:  # (else weights, EMA and BatchNorm statistics are as before the step)
                log.add(losses)
            stop = max_over_ranks(signals.received, ranks, device)  # every rank stops at the same step
            final = step == settings.steps

            if step % settings.log_every == 0 or final:
                log.metrics(step)
            if ranks.main and (step % settings.sample_every == 0 or final):
                grid.save(step, trainer.generator_ema)
            if not trainer.skipped and (step % settings.checkpoint_every == 0 or final or stop):
                checkpoints.save(step)
            log.advance(step)
            if stop and not final:
                log.line(f"stopped by {signal.Signals(stop).name} at step {step} of {settings.steps}; checkpoint "
                         f"{checkpoints.newest}; continue with --resume auto")
                return TrainResult(step, checkpoints.newest, run_dir, signal=stop, main=ranks.main)
        bad_steps.check_end(first_step, step, trainer.skipped)
        log.line(f"done at step {step}; checkpoint {checkpoints.newest}")
    finally:
        log.close()
    return TrainResult(step, checkpoints.newest, run_dir, main=ranks.main)


def _data_and_models(config: Config, data_path: Path, ranks: Ranks,
                     device: torch.device) -> tuple[GlyphSet, int, TrainingStep, GlyphBatches]:
    """The data, its class count, a fresh `TrainingStep` for it and its batches; the memory is checked first.

    TrainingStep seeds torch first, so the initial weights are a function of train.seed.
    """
    settings = config.train
    glyphs = read_store(data_path)
    num_classes = check_class_count(config, glyphs.classes)
    check_training_memory(config, num_classes, glyphs, device, ranks.world)  # before any model or batch is allocated
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels once
    label_rows = None  # Φ's starting rows from the data (a resumed run then loads its trained rows over them)
    if config.model.label_init == "glyphs":
        label_rows = glyph_label_rows(glyphs.images, glyphs.labels, num_classes, config.model.embed_dim)
    trainer = TrainingStep(config, num_classes, glyphs.image_size, device, ranks, classes=glyphs.classes, label_rows=label_rows)
    return glyphs, num_classes, trainer, GlyphBatches(glyphs, settings.batch_size, settings.seed, device, ranks)


def _start_line(config: Config, step: int, resume_from: Path | None, trainer: TrainingStep, data: str) -> str:
    """The first log line of a run: from where, on what, in which arithmetic, on which data."""
    settings, ranks, device = config.train, trainer.ranks, trainer.device
    origin = f"resuming from {resume_from}" if resume_from else "starting"
    where = f"{device}" if not ranks.distributed else (
        f"{ranks.world} ranks ({distributed.backend()}, {device.type}), {settings.batch_size // ranks.world} images each a step"
        f"{', SyncBatchNorm' if settings.sync_batchnorm and ranks.world > 1 else ''}")
    return (f"{origin} at step {step} of {settings.steps} on {where} ({precision_name(trainer.dtype)}"
            f"{', channels_last' if settings.channels_last else ''}{', compiled' if settings.compile else ''}); {data}")


class _BadSteps:
    """Steps whose updates a non-finite loss skipped: each is logged; `train.max_bad_steps` of them in a row, a run
    that applied no update at all, or a skipped last step stop the run with an error."""

    def __init__(self, limit: int, log: RunLog, checkpoints: Checkpointer) -> None:
        self.limit, self.log, self.checkpoints = limit, log, checkpoints
        self.in_a_row = self.applied = 0

    def count(self, step: int, skipped: dict[str, float]) -> None:
        if not skipped:
            self.in_a_row = 0
            self.applied += 1
            return
        self.in_a_row += 1
        found = ", ".join(f"{name} {value}" for name, value in skipped.items())
        self.log.line(f"step {step}: non-finite {found}; update skipped ({self.in_a_row} in a row, "
                      f"train.max_bad_steps={self.limit})")
        if self.in_a_row >= self.limit:
            raise self.checkpoints.stop(f"{self.in_a_row} steps in a row had non-finite losses (steps "
                                        f"{step - self.in_a_row + 1} to {step}, last {found}); stopped without saving them")

    def check_end(self, first_step: int, step: int, skipped: dict[str, float]) -> None:
        """At the end of train.steps: an error if no update of this run was applied, or the last step's was not."""
        if step > first_step and not self.applied:
            raise self.checkpoints.stop(f"no step of this run completed: every one (steps {first_step + 1} to {step}) "
                                        "had a non-finite loss; nothing was saved")
        if skipped:
            raise self.checkpoints.stop(f"the last step ({step}) had non-finite losses, so the run's end was not saved")


class _SampleGrid:
    """The run's sample grids: the EMA generator on fixed noise (and, for a conditional model, fixed classes as
    rows), so grids compare step to step. The grid's RNG is separate from training's."""

    def __init__(self, generator: nn.Module, settings: TrainConfig, num_classes: int, classes: ClassTable,
                 device: torch.device, run_dir: Path, log: RunLog, earlier: str) -> None:
        self.output_range, self.run_dir, self.log, self.earlier = generator.output_range, run_dir, log, earlier
        grid_rng = torch.Generator(device).manual_seed(settings.seed + 1)
        if generator.conditional:
            rows = spread_classes(num_classes, 8)
            self.columns = max(1, settings.grid_size // len(rows))
            self.z = generator.sample_z(self.columns, grid_rng, device).repeat(len(rows), 1)
            self.labels = torch.tensor(rows, device=device).repeat_interleave(self.columns)
            self.captions = [classes.text[c] for c in self.labels.tolist()]
        else:
            self.columns = None
            self.z = generator.sample_z(settings.grid_size, grid_rng, device)
            self.labels, self.captions = None, None

    def save(self, step: int, generator_ema: nn.Module) -> None:
        with torch.no_grad():
            grid = model_to_pixels(generator_ema(self.z, self.labels), self.output_range)
        picture = image_grid(grid.cpu().numpy(), self.captions, self.columns)
        path = self.run_dir / "samples" / f"step_{step:07d}.png"
        if path.exists():
            self.log.line(f"writing over {path}: a grid of step {step} {self.earlier}")
        save_png(picture, path)
        self.log.board.grid(step, picture)


class _StopSignals:
    """SIGTERM and SIGINT ask the loop to stop at the next step boundary, with a checkpoint.

    The handler only notes the signal (the loop logs and saves); a second signal stops at
    once as Ctrl-C always did. Python delivers signals to the main thread, so elsewhere
    (a run started from another thread) nothing is installed.
    """

    def __init__(self) -> None:
        self.received = 0  # the signal number, 0 while none came
        self._previous: dict[int, object] = {}

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {number: signal.signal(number, self._note) for number in (signal.SIGTERM, signal.SIGINT)}
        return self

    def __exit__(self, *exc_info: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    def _note(self, number: int, frame: object) -> None:
        if self.received:
            raise KeyboardInterrupt
        self.received = number


class RunLog:
    """A run's log: log.txt and metrics.jsonl always, TensorBoard events if asked; on a terminal a bar (progress.py)
    with the losses, plain lines otherwise. Rank 0 only: other ranks pass enabled=False.

    `add` sums the losses of each applied step; `metrics` writes their mean over the
    interval since the last metrics line, and images/s of the global batch.
    """

    def __init__(self, run_dir: Path, settings: TrainConfig, start: int, device: torch.device, enabled: bool = True) -> None:
        self.enabled, self.batch_size = enabled, settings.batch_size
        self.board = RunBoard(run_dir, start, enabled=enabled and settings.tensorboard)
        self.loss_sum = torch.zeros(2, device=device)  # (d_loss, g_loss) summed over the good steps since the last line
        self.good_steps = 0
        if not enabled:
            return
        self.metrics_file = open(run_dir / METRICS_FILE, "a", encoding="utf-8")
        self.log_file = open(run_dir / LOG_FILE, "a", encoding="utf-8")
        self.bar = terminal_bar(settings.steps, initial=start, unit="step")
        self.last_time, self.last_step = time.perf_counter(), start

    def line(self, text: str) -> None:
        if not self.enabled:
            return
        self.log_file.write(text + "\n")
        self.log_file.flush()
        print_line(text, self.bar)

    def add(self, losses: Tensor) -> None:
        self.loss_sum += losses
        self.good_steps += 1

    def metrics(self, step: int) -> None:
        """One metrics line for the interval that ends at `step`; the sums start again."""
        if self.enabled:
            self._write_metrics(step, self.loss_sum, self.good_steps)
        self.loss_sum.zero_()
        self.good_steps = 0

    def _write_metrics(self, step: int, loss_sum: Tensor, good_steps: int) -> None:
        """Mean losses over the interval's good steps (null if it had none), images/s of the global batch."""
        now = time.perf_counter()
        steps = step - self.last_step
        d_loss, g_loss = (loss_sum / good_steps).tolist() if good_steps else (None, None)
        record = {"step": step, "d_loss": _rounded(d_loss), "g_loss": _rounded(g_loss), "bad_steps": steps - good_steps,
                  "images_per_s": round(steps * self.batch_size / max(now - self.last_time, 1e-9), 1),
                  "time": round(time.time(), 3)}
        self.metrics_file.write(json.dumps(record) + "\n")
        self.metrics_file.flush()
        self.board.metrics(record)
        self.last_time, self.last_step = now, step
        if self.bar:
            self.bar.set_postfix_str(f"d={d_loss:.4f}, g={g_loss:.4f}, img_s={record['images_per_s']:.0f}" if good_steps else "bad steps")
        elif good_steps:
            self.line(f"step {step}: d_loss {d_loss:.4f} g_loss {g_loss:.4f} {record['images_per_s']:.0f} images/s")
        else:
            self.line(f"step {step}: no good step to average")

    def advance(self, step: int) -> None:
        if self.enabled and self.bar:
            self.bar.update(step - self.bar.n)

    def close(self) -> None:
        self.board.close()
        if not self.enabled:
            return
        if self.bar:
            self.bar.close()
        self.metrics_file.close()
        self.log_file.close()


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
