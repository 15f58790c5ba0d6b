"""The training loop: one function, `train`, read top to bottom.

Set-up (device, data, models, EMA, optimisers, resume) -> loop (batch, noise, G and D
steps in the configured order, EMA update) -> at intervals, metrics, sample grids and
checkpoints in the run folder:

    <run>/config.json          the resolved config
    <run>/metrics.jsonl        one line per log interval: step, losses, images/s
    <run>/log.txt              the plain log lines
    <run>/samples/step_*.png   grids from a fixed noise batch, EMA generator
    <run>/checkpoints/step_*.pt

Losses stay on the device and are read only at log steps, so the loop never waits on a
host-device sync in between. Resuming restores weights, EMA, optimisers, step and RNG
states, and batch order is a function of the step (see data.py): on the CPU a resumed
run matches an uninterrupted one weight for weight.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm import tqdm

from data_tools.errors import InputError
from data_tools.grid import image_grid, save_png
from data_tools.store import ClassTable, read_store

from .checkpoint import checkpoint_path, latest_checkpoint, list_checkpoints, load_checkpoint, prune_checkpoints, save_checkpoint
from .config import Config, apply_overrides, config_from_dict, load_config
from .data import GlyphBatches
from .grids import spread_classes
from .losses import make_loss
from .models import build_models, model_to_pixels, pixels_to_model


@dataclass
class TrainResult:
    step: int
    checkpoint: Path
    run_dir: Path


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
    """Train (or continue) a GAN on a glyph store; returns where the last checkpoint went."""
    run_dir = Path(run_dir)
    settings = config.train
    device = resolve_device(settings.device)
    resume_from = find_resume_checkpoint(run_dir, resume)

    # Data and models. Seeding first makes the initial weights a function of the seed.
    glyphs = read_store(data_path)
    num_classes = _check_class_count(config, glyphs.classes)
    torch.manual_seed(settings.seed)
    generator, discriminator = build_models(config.model, num_classes, glyphs.image_size)
    generator.to(device)
    discriminator.to(device)
    generator_ema = copy.deepcopy(generator).eval().requires_grad_(False)
    optimizer_g = torch.optim.Adam(generator.parameters(), lr=settings.lr_g, betas=(settings.beta1, settings.beta2))
    optimizer_d = torch.optim.Adam(discriminator.parameters(), lr=settings.lr_d, betas=(settings.beta1, settings.beta2))
    loss = make_loss(config.loss)
    noise_rng = torch.Generator(device).manual_seed(settings.seed)
    batches = GlyphBatches(glyphs, settings.batch_size, settings.seed, device)

    step = 0
    if resume_from is not None:
        state = load_checkpoint(resume_from, device)
        _check_compatible(state, config, glyphs.classes, glyphs.image_size, resume_from)
        generator.load_state_dict(state["generator"])
        generator_ema.load_state_dict(state["generator_ema"])
        discriminator.load_state_dict(state["discriminator"])
        optimizer_g.load_state_dict(state["optimizer_g"])
        optimizer_d.load_state_dict(state["optimizer_d"])
        _set_rng_states(state["rng"], noise_rng)
        step = int(state["step"])
        if step > settings.steps:
            raise InputError(f"{resume_from} is at step {step}, beyond train.steps={settings.steps}")

    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    log = _Logger(run_dir, settings.steps, step)
    origin = f"resuming from {resume_from}" if resume_from else "starting"
    log.line(f"{origin} at step {step} of {settings.steps} on {device}; "
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
            "generator": generator.state_dict(),
            "generator_ema": generator_ema.state_dict(),
            "discriminator": discriminator.state_dict(),
            "optimizer_g": optimizer_g.state_dict(),
            "optimizer_d": optimizer_d.state_dict(),
            "rng": _rng_states(noise_rng),
        }

    generator.train()
    discriminator.train()
    loss_sum = torch.zeros(2, device=device)  # (d_loss, g_loss) summed since the last log line
    last_checkpoint = resume_from
    while step < settings.steps:
        real_pixels, labels = batches.batch(step)
        real = pixels_to_model(real_pixels, generator.output_range)  # (B, 1, H, W)
        z = generator.sample_z(settings.batch_size, noise_rng, device)
        fake = generator(z, labels)

        if settings.order == "g_then_d":  # the seed: G step, then D on the same (detached) images
            g_loss = _step(optimizer_g, loss.generator(discriminator(fake, labels)))
            d_loss = _step(optimizer_d, loss.discriminator(discriminator(real, labels), discriminator(fake.detach(), labels)))
        else:  # the paper: D step, then G step on the same z
            d_loss = _step(optimizer_d, loss.discriminator(discriminator(real, labels), discriminator(fake.detach(), labels)))
            g_loss = _step(optimizer_g, loss.generator(discriminator(fake, labels)))
        _update_ema(generator_ema, generator, min(settings.ema_decay, (1 + step) / (10 + step)))
        loss_sum += torch.stack([d_loss, g_loss])
        step += 1

        final = step == settings.steps
        if step % settings.log_every == 0 or final:
            log.metrics(step, loss_sum, settings.batch_size)
            loss_sum.zero_()
        if step % settings.sample_every == 0 or final:
            with torch.no_grad():
                grid = model_to_pixels(generator_ema(grid_z, grid_labels), generator.output_range)
            save_png(image_grid(grid.cpu().numpy(), grid_captions, columns), run_dir / "samples" / f"step_{step:07d}.png")
        if step % settings.checkpoint_every == 0 or final:
            last_checkpoint = checkpoint_path(run_dir, step)
            save_checkpoint(snapshot(step), last_checkpoint)
            prune_checkpoints(run_dir, settings.keep_checkpoints)
        log.advance(step)

    log.line(f"done at step {step}; checkpoint {last_checkpoint}")
    log.close()
    return TrainResult(step, Path(last_checkpoint), run_dir)


def _step(optimizer: torch.optim.Optimizer, loss: Tensor) -> Tensor:
    """One optimiser update on `loss`; gradients left from other losses are cleared first."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


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
        raise InputError(f"{path} was trained with model settings {saved.model}, not {config.model}")
    if state["classes"]["text"] != classes.text:
        raise InputError(f"{path} was trained on a different class table ({len(state['classes']['text'])} classes) than the data ({len(classes)})")
    if state["image_size"] != image_size:
        raise InputError(f"{path} was trained on {state['image_size']}px images; the data has {image_size}px")


class _Logger:
    """Progress bar on a terminal, plain lines otherwise; metrics.jsonl and log.txt always."""

    def __init__(self, run_dir: Path, total: int, start: int) -> None:
        self.metrics_file = open(run_dir / "metrics.jsonl", "a", encoding="utf-8")
        self.log_file = open(run_dir / "log.txt", "a", encoding="utf-8")
        self.bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True) if sys.stderr.isatty() else None
        self.last_time, self.last_step = time.perf_counter(), start

    def line(self, text: str) -> None:
        self.log_file.write(text + "\n")
        self.log_file.flush()
        (self.bar.write if self.bar else lambda t: print(t, file=sys.stderr, flush=True))(text)

    def metrics(self, step: int, loss_sum: Tensor, batch_size: int) -> None:
        now = time.perf_counter()
        steps = step - self.last_step
        d_loss, g_loss = (loss_sum / max(steps, 1)).tolist()
        record = {"step": step, "d_loss": round(d_loss, 6), "g_loss": round(g_loss, 6),
                  "images_per_s": round(steps * batch_size / max(now - self.last_time, 1e-9), 1), "time": round(time.time(), 3)}
        self.metrics_file.write(json.dumps(record) + "\n")
        self.metrics_file.flush()
        self.last_time, self.last_step = now, step
        if self.bar:
            self.bar.set_postfix(d=f"{d_loss:.4f}", g=f"{g_loss:.4f}", img_s=f"{record['images_per_s']:.0f}")
        else:
            self.line(f"step {step}: d_loss {d_loss:.4f} g_loss {g_loss:.4f} {record['images_per_s']:.0f} images/s")

    def advance(self, step: int) -> None:
        if self.bar:
            self.bar.update(step - self.bar.n)

    def close(self) -> None:
        if self.bar:
            self.bar.close()
        self.metrics_file.close()
        self.log_file.close()
