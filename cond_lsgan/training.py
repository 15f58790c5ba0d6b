"""The training loop: one function, `train`, read top to bottom.

Set-up (device, data, models, EMA, optimisers, resume) -> loop (batch, noise, G and D
steps in the configured order, EMA update) -> at intervals, metrics, sample grids and
checkpoints in the run folder:

    <run>/config.json          the resolved config
    <run>/metrics.jsonl        one line per log interval: step, losses, images/s
    <run>/log.txt              the plain log lines
    <run>/samples/step_*.png   grids from a fixed noise batch, EMA generator
    <run>/checkpoints/step_*.pt

One step is a `TrainingStep`, which holds the models, optimisers and noise stream and
knows nothing of run folders, so benchmarks and tests drive exactly the code the loop
runs.

Distributed: under torchrun each process is one rank of a data-parallel run
(distributed.py): `train.batch_size` is the global batch, each rank takes its slice of
the batch and noise a single process would use, G and D run under DDP, BatchNorm is
synchronised (`train.sync_batchnorm`), logged losses are means over the ranks, and rank 0
alone writes the run folder. N ranks compute what one process computes up to float
summation order, and checkpoints hold the unwrapped modules, so a run moves between any
numbers of ranks.

Faults: SIGTERM or SIGINT stops the loop at the next step boundary with a checkpoint
(ranks agree on the step by a small all-reduce each step) and exit code 128 + the signal
number; kill -9 leaves the newest complete checkpoint (they are written atomically) for
`--resume auto`. A non-finite loss skips that update; a step with one keeps EMA and
BatchNorm statistics as they were and writes no checkpoint, and `train.max_bad_steps` of
them in a row stop the run with an error. The guard reads each loss on the host before
its update: free on the CPU, a wait for the queued work on CUDA twice a step, accepted
because the update must not be applied first (fused Adam's `found_inf` would avoid the
wait, but not for the for-each Adam, nor for EMA and BatchNorm statistics).

Speed comes from doing less work for the same function, not from approximations:
`train.precision` (bf16 autocast where the hardware has it; fp16 with a gradient scaler
on CUDA), `train.channels_last`, fused Adam, D's weight gradients skipped while G's loss
is backpropagated through D, and seed32's upsample-convolutions computed as transposed
convolutions (models/seed32.py). The data already sits on the device (data.py), so no
host-to-device copy runs per step; the losses are summed on the device and read only at
log steps (the finite-loss guard above is the one read per update). Resuming restores
weights, EMA, optimisers, gradient scaler, step and RNG states, and batch order is a
function of the step (see data.py): on the CPU a resumed run matches an uninterrupted
one weight for weight (in fp32 and in bf16).
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import json
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm import tqdm

from data_tools.atomic import atomic_output
from data_tools.errors import InputError
from data_tools.grid import image_grid, save_png
from data_tools.store import ClassTable, read_store

from . import distributed
from .checkpoint import (RUN_KEYS, checkpoint_path, latest_checkpoint, list_checkpoints, load_checkpoint, mismatch_detail,
                         prune_checkpoints, save_checkpoint)
from .config import Config, apply_overrides, config_from_dict, load_config
from .data import GlyphBatches
from .distributed import Ranks, max_over_ranks, mean_over_ranks, shard
from .grids import spread_classes
from .losses import make_loss
from .models import build_models, model_to_pixels, pixels_to_model


@dataclass
class TrainResult:
    step: int
    checkpoint: Path | None  # the newest checkpoint of the run (None if none was ever written)
    run_dir: Path
    signal: int = 0  # the signal (SIGTERM, SIGINT) that stopped the run before train.steps; 0 if it finished
    main: bool = True  # rank 0 (the only rank of a one-process run), which reports


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(f"train.device {name!r} is not a device name (try auto, cpu, cuda)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"train.device is {name!r} but no CUDA device is available")
    return device


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX-512 BF16 or AMX); elsewhere bf16 is emulated and slower than fp32."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def resolve_precision(name: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for `train.precision` on `device`; None means plain fp32.

    "auto" picks bf16 where the device computes it natively (it trains as well as fp32
    for these models and needs no loss scaling) and fp32 elsewhere. fp16 needs CUDA: CPU
    autocast has no fast fp16 path, and fp16 gradients need the CUDA gradient scaler.
    """
    if name == "fp32":
        return None
    if name == "fp16":
        if device.type != "cuda":
            raise InputError(f"precision 'fp16' needs a CUDA device, not {device}; use 'bf16' or 'auto' on the CPU")
        return torch.float16
    if device.type == "cuda":
        native = torch.cuda.is_bf16_supported()
    else:
        native = device.type == "cpu" and cpu_has_bf16()
    if name == "bf16":
        if device.type == "cuda" and not native:
            raise InputError(f"precision 'bf16': {torch.cuda.get_device_name(device)} has no bf16; use 'fp16' or 'auto'")
        return torch.bfloat16
    return torch.bfloat16 if native else None  # auto


def precision_name(dtype: torch.dtype | None) -> str:
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Mixed precision for forward passes (a no-op context for fp32)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def keep_freed_memory() -> None:
    """Let glibc serve large blocks from its heap and keep freed memory for reuse.

    By default glibc serves blocks above 128 KiB-32 MiB (an activation map is 1-16 MiB)
    with fresh mmap pages and unmaps them on free, so every step's activations come back
    as new pages the kernel must fault in and zero: measured at about a fifth of a
    seed32 step on the CPU. Raising the trim threshold and turning malloc's mmap off
    (what PyTorch's CPU tuning guide gets from jemalloc or tcmalloc) keeps them in the
    heap. mmap goes off altogether, not just above a higher threshold, because glibc caps
    the threshold at 32 MiB and paper28's largest gradient (D's FC layer, 65 MB) is
    bigger: fresh pages made its weight-gradient product 2.6x slower (41 ms vs 16).
    This holds for blocks the main thread allocates (training's, backward included);
    other threads' arenas are 64 MiB mmap'd heaps, whose larger blocks are still mapped.
    The price: memory freed below the top of the heap stays with the process until it
    ends, so a one-off large buffer keeps its pages. Process-wide, and a no-op where libc
    is not glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_max = -1, -4  # from glibc's malloc.h
    libc.mallopt(m_mmap_max, 0)  # the main arena serves no block by mmap: all come from its heap
    libc.mallopt(m_trim_threshold, 1 << 30)


def make_adam(parameters, lr: float, betas: tuple[float, float]) -> torch.optim.Optimizer:
    """Adam as one fused kernel over all parameters where this torch has one for the device.

    The fused and the for-each forms compute the same update (up to float rounding);
    a checkpoint's optimizer state loads into either.
    """
    parameters = list(parameters)
    try:
        return torch.optim.Adam(parameters, lr=lr, betas=betas, fused=True)
    except (RuntimeError, TypeError):  # an older torch, or a device without the fused kernel
        return torch.optim.Adam(parameters, lr=lr, betas=betas, foreach=True)


class TrainingStep:
    """Models, optimisers and noise stream, and one optimisation step over them.

    `step(real_pixels, labels, index)` runs the G and D updates in `train.order` and the
    EMA update, and returns the losses (d, g) as a device tensor. Everything a
    checkpoint holds is reachable from here (`state_dict` / `load_state_dict`), so the
    training loop adds only data, logging and files. With `ranks` of a torchrun run, G
    and D run under DDP and the step computes this rank's slice of the global batch.
    """

    def __init__(self, config: Config, num_classes: int, image_size: int, device: torch.device,
                 ranks: Ranks = Ranks()) -> None:
        settings = self.settings = config.train
        self.device, self.ranks = device, ranks
        self.dtype = resolve_precision(settings.precision, device)
        self.memory_format = torch.channels_last if settings.channels_last else torch.contiguous_format
        if device.type == "cpu":
            keep_freed_memory()
        torch.manual_seed(settings.seed)  # the initial weights are a function of the seed
        generator, discriminator = build_models(config.model, num_classes, image_size)
        self.generator = generator.to(device=device, memory_format=self.memory_format)
        self.discriminator = discriminator.to(device=device, memory_format=self.memory_format)
        self.generator_ema = copy.deepcopy(self.generator).eval().requires_grad_(False)
        if ranks.world > 1 and settings.sync_batchnorm:  # batch statistics of the global batch, as one process has them
            distributed.use_global_batch_statistics(self.generator, device)
            distributed.use_global_batch_statistics(self.discriminator, device)
        betas = (settings.beta1, settings.beta2)
        self.optimizer_g = make_adam(self.generator.parameters(), settings.lr_g, betas)
        self.optimizer_d = make_adam(self.discriminator.parameters(), settings.lr_d, betas)
        # Scales fp16 losses so small gradients do not underflow; a pass-through otherwise.
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.dtype == torch.float16)
        self.loss = make_loss(config.loss)
        self.noise_rng = torch.Generator(device).manual_seed(settings.seed)
        # BatchNorm running statistics of G and D, and their copy from before the step, put back after a bad one.
        self.statistics = [*self.generator.buffers(), *self.discriminator.buffers()]
        self.saved_statistics = [buffer.clone() for buffer in self.statistics]
        self.skipped: dict[str, float] = {}  # the last step's updates skipped for a non-finite loss: name -> loss
        # torch.compile and DDP wrap the modules; the unwrapped ones are what checkpoints save.
        compile_ = torch.compile if settings.compile else (lambda module: module)
        parallel = distributed.data_parallel if ranks.distributed else (lambda module, device: module)
        self.run_generator = compile_(parallel(self.generator, device))
        self.run_discriminator = compile_(parallel(self.discriminator, device))
        # G's loss runs D unwrapped: D is frozen then, and DDP's reducer would wait for D gradients that never come.
        self.frozen_discriminator = compile_(self.discriminator) if ranks.distributed else self.run_discriminator

    def step(self, real_pixels: Tensor, labels: Tensor, index: int) -> Tensor:
        """One G update and one D update on this rank's uint8 images (B, H, W); returns (d_loss, g_loss), means over the ranks.

        An update whose loss is not finite is not applied and is named in `self.skipped`;
        after such a step EMA and BatchNorm running statistics are what they were before it.
        """
        self.skipped = {}
        torch._foreach_copy_(self.saved_statistics, self.statistics)
        real = pixels_to_model(real_pixels, self.generator.output_range)  # (B, 1, H, W)
        real = real.contiguous(memory_format=self.memory_format)
        # Every rank draws the global batch's noise and keeps its slice: the noise of a one-process run.
        z = shard(self.generator.sample_z(len(real) * self.ranks.world, self.noise_rng, self.device), self.ranks)  # (B, z)
        with autocast(self.device, self.dtype):
            fake = self.run_generator(z, labels)
        if self.settings.order == "g_then_d":  # the seed: G step, then D on the same (detached) images
            g_loss = self._generator_update(fake, labels)
            d_loss = self._discriminator_update(real, fake.detach(), labels)
        else:  # the paper: D step, then G step on the same z
            d_loss = self._discriminator_update(real, fake.detach(), labels)
            g_loss = self._generator_update(fake, labels)
        if len(self.skipped) < 2:  # (fp16) the scaler updates from the optimiser steps it has seen
            self.scaler.update()
        if self.skipped:
            torch._foreach_copy_(self.statistics, self.saved_statistics)
        else:
            _update_ema(self.generator_ema, self.generator, min(self.settings.ema_decay, (1 + index) / (10 + index)))
        return torch.stack([d_loss, g_loss])

    def _generator_update(self, fake: Tensor, labels: Tensor) -> Tensor:
        # G's loss needs D's gradient with respect to its input only; freezing D skips
        # the weight-gradient half of D's backward (D's .grad is cleared before its own
        # update anyway, so results are unchanged).
        self.discriminator.requires_grad_(False)
        try:
            with autocast(self.device, self.dtype):
                scores = self.frozen_discriminator(fake, labels)
        finally:
            self.discriminator.requires_grad_(True)
        return self._update(self.optimizer_g, self.loss.generator(scores.float()), "g_loss")

    def _discriminator_update(self, real: Tensor, fake: Tensor, labels: Tensor) -> Tensor:
        with autocast(self.device, self.dtype):
            real_scores = self.run_discriminator(real, labels)
            fake_scores = self.run_discriminator(fake, labels)
        return self._update(self.optimizer_d, self.loss.discriminator(real_scores.float(), fake_scores.float()), "d_loss")

    def _update(self, optimizer: torch.optim.Optimizer, loss: Tensor, name: str) -> Tensor:
        """One optimiser update on `loss` unless its mean over the ranks is not finite; returns that mean.

        Gradients left from other losses are cleared first. The mean makes every rank
        decide alike (a skipped update runs no backward pass, so no DDP all-reduce).
        """
        mean = mean_over_ranks(loss.detach(), self.ranks)
        if not torch.isfinite(mean):  # a host read: free on the CPU, a wait on CUDA (see the module docstring)
            self.skipped[name] = mean.item()
            return mean
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        return mean

    def state_dict(self) -> dict:
        """The weights, optimiser and scaler states and RNG states, as a checkpoint stores them."""
        return {
            "generator": self.generator.state_dict(),
            "generator_ema": self.generator_ema.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "optimizer_g": self.optimizer_g.state_dict(),
            "optimizer_d": self.optimizer_d.state_dict(),
            "grad_scaler": self.scaler.state_dict(),
            "rng": _rng_states(self.noise_rng),
        }

    def load_state_dict(self, state: dict, origin: str | Path = "checkpoint") -> None:
        """Restore what `state_dict` saved; state that does not fit these models is one InputError line."""
        for module, key in ((self.generator, "generator"), (self.generator_ema, "generator_ema"), (self.discriminator, "discriminator")):
            try:
                module.load_state_dict(state[key])
            except RuntimeError as error:
                raise InputError(f"{origin}: {key} weights do not fit the model ({mismatch_detail(error)})") from None
        betas = (self.settings.beta1, self.settings.beta2)
        for optimizer, key, lr in ((self.optimizer_g, "optimizer_g", self.settings.lr_g), (self.optimizer_d, "optimizer_d", self.settings.lr_d)):
            try:
                optimizer.load_state_dict(state[key])
            except (ValueError, KeyError, TypeError) as error:  # other parameter groups or counts
                raise InputError(f"{origin}: {key} does not fit the model ({str(error).splitlines()[0]})") from None
            for group in optimizer.param_groups:  # the saved state brings the old run's settings: the config's apply
                group.update(lr=lr, betas=betas)
            _match_param_layouts(optimizer, f"{origin}: {key}")
        if state.get("grad_scaler") and self.scaler.is_enabled():  # only fp16 runs have scaler state
            self.scaler.load_state_dict(state["grad_scaler"])
        try:
            _set_rng_states(state["rng"], self.noise_rng)
        except (KeyError, RuntimeError, AttributeError) as error:
            raise InputError(f"{origin}: damaged checkpoint (RNG states: {str(error).splitlines()[0]})") from None


def _match_param_layouts(optimizer: torch.optim.Optimizer, origin: str) -> None:
    """Give loaded optimizer state the memory layout of its parameter; a moment of another shape is an InputError.

    A checkpoint written with another `train.channels_last` holds moment tensors in the
    other layout, and the fused CPU Adam kernel (torch 2.x) walks memory in the
    parameter's order without checking, which silently mixes up elements. Copying each
    state tensor into the parameter's layout keeps checkpoints interchangeable.
    """
    for param, param_state in optimizer.state.items():
        for key, value in param_state.items():
            if not isinstance(value, Tensor) or value.dim() == 0:  # the step count
                continue
            if value.shape != param.shape:
                raise InputError(f"{origin} does not fit the model ({key} of shape {tuple(value.shape)} "
                                 f"for a parameter of shape {tuple(param.shape)})")
            if value.stride() != param.stride():
                param_state[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def resolve_run_config(config_path: str | Path | None, run_dir: str | Path, resume: str | None,
                       overrides: list[str]) -> Config:
    """The config file plus overrides; without a file, a resumed run reuses its saved config.json."""
    if config_path is not None:
        return load_config(config_path, overrides)
    saved = Path(run_dir) / "config.json"
    if not (resume and saved.is_file()):
        raise InputError("--config is required (it may be left out only with --resume on a run folder that has config.json)")
    try:
        values = json.loads(saved.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{saved}: not valid JSON ({error})") from None
    return apply_overrides(config_from_dict(values, origin=str(saved)), overrides)


def find_resume_checkpoint(run_dir: Path, resume: str | None) -> Path | None:
    """`--resume auto` -> the run's newest checkpoint (None on a fresh run); a path -> that file."""
    if resume is None:
        if list_checkpoints(run_dir):
            raise InputError(f"{run_dir} already holds checkpoints; pass --resume auto to continue it or choose a new --out")
        return None
    if resume == "auto":
        return latest_checkpoint(run_dir)
    return Path(resume)


def train(config: Config, data_path: str | Path, run_dir: str | Path, resume: str | None = None) -> TrainResult:
    """Train (or continue) a GAN on a glyph store; returns where the last checkpoint went.

    Under torchrun this process is one rank of a data-parallel run (distributed.py): it
    joins the process group here and leaves it when the run ends, however it ends.
    """
    ranks = distributed.from_environment()
    distributed.per_rank_batch(config.train.batch_size, ranks)  # checked before any rank waits for the others
    device = distributed.rank_device(resolve_device(config.train.device), ranks)
    with distributed.process_group(ranks, device), _StopSignals() as signals:
        return _train(config, Path(data_path), Path(run_dir), resume, ranks, device, signals)


def _train(config: Config, data_path: Path, run_dir: Path, resume: str | None, ranks: Ranks, device: torch.device,
           signals: _StopSignals) -> TrainResult:
    settings = config.train
    resume_from = find_resume_checkpoint(run_dir, resume)

    # Data, then models (TrainingStep seeds first, so the initial weights are a function of the seed).
    glyphs = read_store(data_path)
    num_classes = _check_class_count(config, glyphs.classes)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels once
    trainer = TrainingStep(config, num_classes, glyphs.image_size, device, ranks)
    generator = trainer.generator
    batches = GlyphBatches(glyphs, settings.batch_size, settings.seed, device, ranks)

    step = 0
    if resume_from is not None:
        state = load_checkpoint(resume_from, device, require=RUN_KEYS)
        _check_compatible(state, config, glyphs.classes, glyphs.image_size, resume_from)
        trainer.load_state_dict(state, resume_from)
        step = state["step"]
        if step > settings.steps:
            raise InputError(f"{resume_from} is at step {step}, beyond train.steps={settings.steps}")
    distributed.check_same_step(step, ranks, device)
    distributed.seed_dropout(settings.seed, step, ranks)

    if ranks.main:  # rank 0 alone writes the run folder
        with atomic_output(run_dir / "config.json") as temporary:  # atomic: a restarted rank may be reading it
            temporary.write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    log = _Logger(run_dir, settings.steps, step, enabled=ranks.main)
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
    good_steps = bad_in_a_row = 0
    last_checkpoint = resume_from
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
                    kept = f"the newest good checkpoint is {last_checkpoint}" if last_checkpoint else "no checkpoint was written"
                    raise InputError(f"{bad_in_a_row} steps in a row had non-finite losses (steps {step - bad_in_a_row + 1} to "
                                     f"{step}, last {found}); stopped without saving them; {kept}; "
                                     "lower train.lr_g and train.lr_d or check the data")
            else:
                bad_in_a_row = 0
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
                save_png(image_grid(grid.cpu().numpy(), grid_captions, columns), run_dir / "samples" / f"step_{step:07d}.png")
            if not trainer.skipped and (step % settings.checkpoint_every == 0 or final or stop):
                last_checkpoint = checkpoint_path(run_dir, step)
                if ranks.main:
                    save_checkpoint(snapshot(step), last_checkpoint)
                    prune_checkpoints(run_dir, settings.keep_checkpoints)
            log.advance(step)
            if stop and not final:
                log.line(f"stopped by {signal.Signals(stop).name} at step {step} of {settings.steps}; checkpoint "
                         f"{last_checkpoint}; continue with --resume auto")
                return TrainResult(step, last_checkpoint, run_dir, signal=stop, main=ranks.main)
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


@torch.no_grad()
def _update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model for weights; buffers (BN statistics) copied.

    The loop warms the decay up as (1 + step) / (10 + step) until it reaches
    train.ema_decay, so early samples follow the model instead of its random init.
    """
    ema_params, params = list(ema.parameters()), list(model.parameters())
    torch._foreach_lerp_(ema_params, params, 1.0 - decay)
    for ema_buffer, buffer in zip(ema.buffers(), model.buffers()):
        ema_buffer.copy_(buffer)


def _rng_states(noise_rng: torch.Generator) -> dict:
    states = {"torch": torch.get_rng_state(), "noise": noise_rng.get_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict, noise_rng: torch.Generator) -> None:
    torch.set_rng_state(states["torch"].cpu())
    noise_rng.set_state(states["noise"].cpu())
    if "cuda" in states and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in states["cuda"]])


def _check_class_count(config: Config, classes: ClassTable) -> int:
    pinned = config.model.num_classes
    if pinned and pinned != len(classes):
        raise InputError(f"model.num_classes is {pinned} but the data's class table has {len(classes)} classes")
    return len(classes)


def _check_compatible(state: dict, config: Config, classes: ClassTable, image_size: int, path: Path) -> None:
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


class _Logger:
    """Progress bar on a terminal, plain lines otherwise; metrics.jsonl and log.txt always (rank 0 only: others pass enabled=False)."""

    def __init__(self, run_dir: Path, total: int, start: int, enabled: bool = True) -> None:
        self.enabled = enabled
        if not enabled:
            return
        self.metrics_file = open(run_dir / "metrics.jsonl", "a", encoding="utf-8")
        self.log_file = open(run_dir / "log.txt", "a", encoding="utf-8")
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
        if not self.enabled:
            return
        if self.bar:
            self.bar.close()
        self.metrics_file.close()
        self.log_file.close()


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
