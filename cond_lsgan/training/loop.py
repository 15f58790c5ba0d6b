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

One step is a `TrainingStep` (step.py); this module adds data, files, signals and logs.
Batch order is a function of the step (batches.py) and checkpoints hold weights, EMA,
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
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from tqdm import tqdm

from ..checkpoint import checkpoint_path, prune_checkpoints, save_checkpoint
from ..config import Config
from ..data_tools_api import InputError, atomic_output, image_grid, read_store, save_png
from ..memory import check_training_memory
from ..models import model_to_pixels
from ..models.label_init import glyph_label_rows
from ..runtime import precision_name, resolve_device
from ..selection import spread_classes
from . import distributed
from .batches import GlyphBatches
from .distributed import Ranks, max_over_ranks
from .resume import check_class_count, check_compatible, load_resume_checkpoint, set_aside_damaged
from .run_folder import CONFIG_FILE, LOG_FILE, METRICS_FILE, RunLock
from .step import TrainingStep
from .tensorboard_log import RunBoard, require_tensorboard

LOWER = "lower train.lr_g and train.lr_d or check the data and the loss settings"


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

    # Data, then models (TrainingStep seeds first, so the initial weights are a function of train.seed).
    glyphs = read_store(data_path)
    num_classes = check_class_count(config, glyphs.classes)
    check_training_memory(config, num_classes, glyphs, device, ranks.world)  # before any model or batch is allocated
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels once
    label_rows = None  # Φ's starting rows from the data (a resumed run then loads its trained rows over them)
    if config.model.label_init == "glyphs":
        label_rows = glyph_label_rows(glyphs.images, glyphs.labels, num_classes, config.model.embed_dim)
    trainer = TrainingStep(config, num_classes, glyphs.image_size, device, ranks, classes=glyphs.classes, label_rows=label_rows)
    generator = trainer.generator
    batches = GlyphBatches(glyphs, settings.batch_size, settings.seed, device, ranks)

    step = 0
    if state is not None:
        check_compatible(state, config, glyphs.classes, glyphs.image_size, resume_from)
        trainer.load_state_dict(state, resume_from)
        step = state["step"]
        if step > settings.steps:
            raise InputError(f"{resume_from} is at step {step}, beyond train.steps={settings.steps}")
    distributed.check_same_step(step, ranks, device)  # also: every rank has read its checkpoint
    distributed.seed_dropout(settings.seed, step, ranks)
    if ranks.main:  # the damaged checkpoints this run trains past go aside, not under its new files
        resume_notes += set_aside_damaged(damaged, step, settings.steps)

    if ranks.main:  # rank 0 alone writes the run folder
        with atomic_output(run_dir / CONFIG_FILE) as temporary:  # atomic: a restarted rank may be reading it
            temporary.write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    log = _Logger(run_dir, settings.steps, step, enabled=ranks.main, tensorboard=settings.tensorboard)
    for note in [*notes, *resume_notes]:
        log.line(note)
    origin = f"resuming from {resume_from}" if resume_from else "starting"
    where = f"{device}" if not ranks.distributed else (
        f"{ranks.world} ranks ({distributed.backend()}, {device.type}), {settings.batch_size // ranks.world} images each a step"
        f"{', SyncBatchNorm' if settings.sync_batchnorm and ranks.world > 1 else ''}")
    log.line(f"{origin} at step {step} of {settings.steps} on {where} ({precision_name(trainer.dtype)}"
             f"{', channels_last' if settings.channels_last else ''}{', compiled' if settings.compile else ''}); "
             f"data {data_path}: {len(glyphs)} images, {num_classes} classes")

    # Fixed noise (and, for a conditional model, fixed classes as rows) for sample grids,
    # so grids compare step to step. The grid's RNG is separate from training's.
    grid_rng = torch.Generator(device).manual_seed(settings.seed + 1)
    if generator.conditional:
        rows = spread_classes(num_classes, 8)
        columns = max(1, settings.grid_size // len(rows))
        grid_z = generator.sample_z(columns, grid_rng, device).repeat(len(rows), 1)
        grid_labels = torch.tensor(rows, device=device).repeat_interleave(columns)
        grid_captions = [glyphs.classes.text[c] for c in grid_labels.tolist()]
    else:
        columns = None
        grid_z = generator.sample_z(settings.grid_size, grid_rng, device)
        grid_labels, grid_captions = None, None

    def snapshot(step: int) -> dict:
        return {
            "step": step,
            "config": config.to_dict(),
            "classes": glyphs.classes.to_dict(),
            "image_size": glyphs.image_size,
            **trainer.state_dict(),
        }

    generator.train()
    trainer.discriminator.train()
    loss_sum = torch.zeros(2, device=device)  # (d_loss, g_loss) summed over the good steps since the last log line
    good_steps = bad_in_a_row = applied_steps = 0
    first_step = step
    last_checkpoint = resume_from
    earlier = f"from before this run resumed at step {first_step}" if resume_from else "from before this run started"

    def kept() -> str:
        return f"the newest good checkpoint is {last_checkpoint}" if last_checkpoint else "no checkpoint was written"
    try:
        while step < settings.steps:
            losses = trainer.step(*batches.batch(step), step)  # (d_loss, g_loss), means over the ranks
            step += 1
            if trainer.skipped:  # those updates were not applied; EMA and BatchNorm statistics are as before the step
                bad_in_a_row += 1
                found = ", ".join(f"{name} {value}" for name, value in trainer.skipped.items())
                log.line(f"step {step}: non-finite {found}; update skipped ({bad_in_a_row} in a row, "
                         f"train.max_bad_steps={settings.max_bad_steps})")
                if bad_in_a_row >= settings.max_bad_steps:
                    raise InputError(f"{bad_in_a_row} steps in a row had non-finite losses (steps {step - bad_in_a_row + 1} to "
                                     f"{step}, last {found}); stopped without saving them; {kept()}; {LOWER}")
            else:
                bad_in_a_row = 0
                applied_steps += 1
                loss_sum += losses
                good_steps += 1
            stop = max_over_ranks(signals.received, ranks, device)  # every rank stops at the same step
            final = step == settings.steps

            if step % settings.log_every == 0 or final:
                log.metrics(step, loss_sum, good_steps, settings.batch_size)
                loss_sum.zero_()
                good_steps = 0
            if ranks.main and (step % settings.sample_every == 0 or final):
                with torch.no_grad():
                    grid = model_to_pixels(trainer.generator_ema(grid_z, grid_labels), generator.output_range)
                picture = image_grid(grid.cpu().numpy(), grid_captions, columns)
                grid_path = run_dir / "samples" / f"step_{step:07d}.png"
                if grid_path.exists():
                    log.line(f"writing over {grid_path}: a grid of step {step} {earlier}")
                save_png(picture, grid_path)
                log.board.grid(step, picture)
            if not trainer.skipped and (step % settings.checkpoint_every == 0 or final or stop):
                problem = trainer.unusable_weights(grid_z, grid_labels)
                if max_over_ranks(int(problem is not None), ranks, device):  # every rank stops alike
                    raise InputError(f"step {step}: the losses were finite but the updated weights are not usable "
                                     f"({problem or 'on another rank'}); not saved; {kept()}; {LOWER}")
                last_checkpoint = checkpoint_path(run_dir, step)
                if ranks.main:
                    if last_checkpoint.exists():
                        log.line(f"writing over {last_checkpoint}: a checkpoint of step {step} {earlier}")
                    save_checkpoint(snapshot(step), last_checkpoint)
                    for pruned in prune_checkpoints(run_dir, settings.keep_checkpoints, intact=last_checkpoint):
                        log.line(f"pruned {pruned} (train.keep_checkpoints={settings.keep_checkpoints})")
            log.advance(step)
            if stop and not final:
                log.line(f"stopped by {signal.Signals(stop).name} at step {step} of {settings.steps}; checkpoint "
                         f"{last_checkpoint}; continue with --resume auto")
                return TrainResult(step, last_checkpoint, run_dir, signal=stop, main=ranks.main)
        if step > first_step and not applied_steps:
            raise InputError(f"no step of this run completed: every one (steps {first_step + 1} to {step}) had a non-finite "
                             f"loss; nothing was saved; {kept()}; {LOWER}")
        if trainer.skipped:
            raise InputError(f"the last step ({step}) had non-finite losses, so the run's end was not saved; {kept()}; {LOWER}")
        log.line(f"done at step {step}; checkpoint {last_checkpoint}")
    finally:
        log.close()
    return TrainResult(step, last_checkpoint, run_dir, main=ranks.main)


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


class _Logger:
    """Progress bar on a terminal, plain lines otherwise; metrics.jsonl and log.txt always, TensorBoard events if asked
    (rank 0 only: others pass enabled=False)."""

    def __init__(self, run_dir: Path, total: int, start: int, enabled: bool = True, tensorboard: bool = False) -> None:
        self.enabled = enabled
        self.board = RunBoard(run_dir, start, enabled=enabled and tensorboard)
        if not enabled:
            return
        self.metrics_file = open(run_dir / METRICS_FILE, "a", encoding="utf-8")
        self.log_file = open(run_dir / LOG_FILE, "a", encoding="utf-8")
        self.bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True) if sys.stderr.isatty() else None
        self.last_time, self.last_step = time.perf_counter(), start

    def line(self, text: str) -> None:
        if not self.enabled:
            return
        self.log_file.write(text + "\n")
        self.log_file.flush()
        (self.bar.write if self.bar else lambda t: print(t, file=sys.stderr, flush=True))(text)

    def metrics(self, step: int, loss_sum: Tensor, good_steps: int, batch_size: int) -> None:
        """One metrics line: mean losses over the interval's good steps (null if it had none), images/s of the global batch."""
        if not self.enabled:
            return
        now = time.perf_counter()
        steps = step - self.last_step
        d_loss, g_loss = (loss_sum / good_steps).tolist() if good_steps else (None, None)
        record = {"step": step, "d_loss": _rounded(d_loss), "g_loss": _rounded(g_loss), "bad_steps": steps - good_steps,
                  "images_per_s": round(steps * batch_size / max(now - self.last_time, 1e-9), 1), "time": round(time.time(), 3)}
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
