"""One optimisation step of a GAN, and everything a checkpoint holds of it.

`TrainingStep` is put together from small named pieces: the models and optimisers
(`build_models_and_optimisers`), the loss terms (`LossTerms`), D's input augmentation
(`Augmentation`) and the guard that applies or skips each update (`GuardedUpdate`).
`step(real_pixels, labels, index)` runs the G and D updates in `train.order` and the EMA
update; `state_dict()` (built by checkpoint.py) and `load_state_dict()` are what a
checkpoint saves and resume restores. It knows nothing of run folders, logs or signals
(loop.py), so benchmarks and tests drive exactly the code the training loop runs.

Speed without approximation: `train.precision` autocast (runtime.py), channels_last,
fused Adam, the exact faster layer forms of `cond_lsgan/fast` (`train.fast_paths`), and
D's weight gradients skipped while G's loss is backpropagated through D. A loss that is
not finite skips its update: the guard reads the loss on the host before the update,
free on the CPU and a wait for the queued work on CUDA, accepted because the update must
not be applied first (fused Adam's `found_inf` would avoid the wait, but not for the
for-each Adam, nor for EMA and BatchNorm statistics). With `ranks` of a torchrun run, G
and D run under DDP and the step computes this rank's slice of the global batch.

Options beyond the paper's step: `train.augment` passes every image D sees through the
same differentiable augmentation (diff_augment.py), `loss.mode_seeking` pairs the noise of
G's batch per label and adds MSGAN's term (losses.py), and `loss.classifier` adds a
frozen judge's cross-entropy on G's images (judge_loss.py). `model.label_init =
"glyphs"` starts the label maps at `label_rows`, which the caller computes from the data
(models/label_init.py); the step itself never reads the data set.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor, nn

from ..checkpoint import mismatch_detail, restore_rng_states, training_state
from ..config import Config, parse_policy
from ..data_tools_api import ClassTable, InputError
from ..fast import use_fast_paths
from ..models import build_models, pixels_to_model
from ..models.label_init import set_label_rows
from ..runtime import autocast, make_adam, resolve_precision
from . import distributed
from .diff_augment import augment, batch_rng
from .distributed import Ranks, mean_over_ranks, shard
from .judge_loss import JudgeLoss
from .losses import make_loss, mode_seeking_term


class DInput(IntEnum):
    """What D is shown. The value is part of the batch's augmentation seed (diff_augment.batch_rng): never renumber."""

    REAL = 0  # real images, in D's update
    FAKE = 1  # G's images (detached), in D's update
    FAKE_FOR_G = 2  # G's images, in G's update (G's gradient flows back through D)


class TrainingStep:
    """Models, optimisers and noise stream, and one optimisation step over them.

    `step(real_pixels, labels, index)` returns the losses (d, g) as a device tensor.
    Building one changes no process-wide setting (see process.py for those).
    """

    def __init__(self, config: Config, num_classes: int, image_size: int, device: torch.device,
                 ranks: Ranks = Ranks(), classes: ClassTable | None = None, label_rows: Tensor | None = None) -> None:
        settings = self.settings = config.train
        self.device, self.ranks = device, ranks
        self.dtype = resolve_precision(settings.precision, device)
        self.memory_format = torch.channels_last if settings.channels_last else torch.contiguous_format
        models = build_models_and_optimisers(config, num_classes, image_size, device, ranks, self.memory_format, label_rows)
        self.generator, self.discriminator, self.generator_ema = models.generator, models.discriminator, models.generator_ema
        self.optimizer_g, self.optimizer_d = models.optimizer_g, models.optimizer_d
        self.guard = GuardedUpdate(self.dtype, device, ranks, [*self.generator.buffers(), *self.discriminator.buffers()])
        self.scaler = self.guard.scaler  # (fp16) what a checkpoint saves of the guard
        self.losses = LossTerms(config, classes, image_size, self.generator.output_range, device)
        self.augment = Augmentation(settings.augment, settings.seed, self.generator.output_range, ranks, device)
        self.noise_rng = torch.Generator(device).manual_seed(settings.seed)
        # torch.compile and DDP wrap the modules; the unwrapped ones are what checkpoints save.
        self.run_generator, self.run_discriminator, self.frozen_discriminator = _wrapped(
            self.generator, self.discriminator, settings.compile, ranks, device)

    @property
    def skipped(self) -> dict[str, float]:
        """The last step's updates skipped for a non-finite loss: name ("d_loss", "g_loss") -> loss; empty if none."""
        return self.guard.skipped

    def step(self, real_pixels: Tensor, labels: Tensor, index: int) -> Tensor:
        """One G update and one D update (step `index`) on this rank's uint8 images (B, H, W); returns (d_loss, g_loss),
        means over the ranks.

        An update whose loss is not finite is not applied and is named in `self.skipped`;
        after such a step EMA and BatchNorm running statistics are what they were before it.
        """
        self.guard.begin()
        real = pixels_to_model(real_pixels, self.generator.output_range)  # (B, 1, H, W)
        real = real.contiguous(memory_format=self.memory_format)
        # Every rank draws the global batch's noise and keeps its slice: the noise of a one-process run.
        z = shard(self.generator.sample_z(len(real) * self.ranks.world, self.noise_rng, self.device), self.ranks)  # (B, z)
        fake_labels = self.losses.fake_labels(labels)
        with autocast(self.device, self.dtype):
            fake = self.run_generator(z, fake_labels)
        if self.settings.order == "g_then_d":  # the reference code: G step, then D on the same (detached) images
            g_loss = self._generator_update(fake, fake_labels, z, index)
            d_loss = self._discriminator_update(real, labels, fake.detach(), fake_labels, index)
        else:  # the paper: D step, then G step on the same z
            d_loss = self._discriminator_update(real, labels, fake.detach(), fake_labels, index)
            g_loss = self._generator_update(fake, fake_labels, z, index)
        if self.guard.finish():  # both updates applied: the EMA follows G, its decay warmed up over the first steps
            _update_ema(self.generator_ema, self.generator, min(self.settings.ema_decay, (1 + index) / (10 + index)))
        return torch.stack([d_loss, g_loss])

    def _generator_update(self, fake: Tensor, labels: Tensor, z: Tensor, index: int) -> Tensor:
        # G's loss needs D's gradient with respect to its input only; freezing D skips
        # the weight-gradient half of D's backward (D's .grad is cleared before its own
        # update anyway, so results are unchanged).
        self.discriminator.requires_grad_(False)
        try:
            with autocast(self.device, self.dtype):
                scores = self.frozen_discriminator(self.augment(fake, DInput.FAKE_FOR_G, index), labels)
        finally:
            self.discriminator.requires_grad_(True)
        return self.guard.apply(self.optimizer_g, self.losses.generator(scores, fake, labels, z), "g_loss")

    def _discriminator_update(self, real: Tensor, labels: Tensor, fake: Tensor, fake_labels: Tensor, index: int) -> Tensor:
        with autocast(self.device, self.dtype):
            real_scores = self.run_discriminator(self.augment(real, DInput.REAL, index), labels)
            fake_scores = self.run_discriminator(self.augment(fake, DInput.FAKE, index), fake_labels)
        return self.guard.apply(self.optimizer_d, self.losses.discriminator(real_scores, fake_scores), "d_loss")

    @torch.no_grad()
    def unusable_weights(self, z: Tensor, labels: Tensor | None) -> str | None:
        """Why the weights must not be checkpointed, or None: non-finite values, or D's scores of G(z) not finite.

        Finite losses do not make finite weights: the update after them can throw the
        weights to inf, or to values so large that the next forward pass overflows. The
        forward here runs the unwrapped models in eval mode, so it changes no BatchNorm
        statistic, draws no random number and leaves training exactly as it was.
        """
        for name, module in (("G", self.generator), ("the EMA G", self.generator_ema), ("D", self.discriminator)):
            for key, tensor in module.state_dict().items():
                if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                    return f"{name}'s {key} holds non-finite values"
        modes = self.generator.training, self.discriminator.training
        self.generator.eval()
        self.discriminator.eval()
        try:
            with autocast(self.device, self.dtype):
                scores = self.discriminator(self.generator(z, labels), labels)
        finally:
            self.generator.train(modes[0])
            self.discriminator.train(modes[1])
        return None if torch.isfinite(scores.float()).all() else "D's scores of G's images are not finite"

    def state_dict(self) -> dict:
        """The weights, optimiser and scaler states and RNG states, as a checkpoint stores them (checkpoint.training_state)."""
        return training_state(self)

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
            restore_rng_states(state["rng"], self.noise_rng)
        except (KeyError, RuntimeError, AttributeError) as error:
            raise InputError(f"{origin}: damaged checkpoint (RNG states: {str(error).splitlines()[0]})") from None


@dataclass
class Models:
    """G, D, the EMA copy of G and their optimisers, unwrapped: what checkpoints save."""

    generator: nn.Module
    discriminator: nn.Module
    generator_ema: nn.Module
    optimizer_g: torch.optim.Optimizer
    optimizer_d: torch.optim.Optimizer


def build_models_and_optimisers(config: Config, num_classes: int, image_size: int, device: torch.device, ranks: Ranks,
                                memory_format: torch.memory_format, label_rows: Tensor | None) -> Models:
    """The models as `config` asks for them, on `device`; the initial weights are a function of train.seed.

    This seeds torch's global RNG (only dropout draws from it later). The EMA copy is taken
    before SyncBatchNorm replaces G's layers, so it keeps plain BatchNorm.
    """
    settings = config.train
    torch.manual_seed(settings.seed)
    generator, discriminator = build_models(config.model, num_classes, image_size)
    if config.model.label_init == "glyphs":  # Φ's rows start from each class's glyphs (models/label_init.py)
        if label_rows is None:
            raise InputError("model.label_init = 'glyphs' needs the rows from the data (TrainingStep(..., label_rows=...))")
        set_label_rows([generator, discriminator], label_rows)
    if settings.fast_paths:  # same parameters and state dicts, faster layer forms for this device
        use_fast_paths(generator, device)
        use_fast_paths(discriminator, device)
    generator = generator.to(device=device, memory_format=memory_format)
    discriminator = discriminator.to(device=device, memory_format=memory_format)
    generator_ema = copy.deepcopy(generator).eval().requires_grad_(False)
    if ranks.world > 1 and settings.sync_batchnorm:  # batch statistics of the global batch, as one process has them
        distributed.use_global_batch_statistics(generator, device)
        distributed.use_global_batch_statistics(discriminator, device)
    betas = (settings.beta1, settings.beta2)
    optimizer_g = make_adam(generator.parameters(), settings.lr_g, betas)
    optimizer_d = make_adam(discriminator.parameters(), settings.lr_d, betas)
    return Models(generator, discriminator, generator_ema, optimizer_g, optimizer_d)


def _wrapped(generator: nn.Module, discriminator: nn.Module, compile: bool, ranks: Ranks,
             device: torch.device) -> tuple[Callable[..., Tensor], Callable[..., Tensor], Callable[..., Tensor]]:
    """The forms that compute: G and D under torch.compile (`train.compile`) and DDP (torchrun), and the D of G's loss.

    G's loss runs D unwrapped: D is frozen then, and DDP's reducer would wait for D gradients that never come.
    """
    compile_ = torch.compile if compile else (lambda module: module)
    parallel = distributed.data_parallel if ranks.distributed else (lambda module, device: module)
    run_generator = compile_(parallel(generator, device))
    run_discriminator = compile_(parallel(discriminator, device))
    frozen_discriminator = compile_(discriminator) if ranks.distributed else run_discriminator
    return run_generator, run_discriminator, frozen_discriminator


class LossTerms:
    """D's loss, and G's: the GAN loss (`loss.kind`), plus MSGAN's mode-seeking term and a frozen judge's
    cross-entropy where the config asks for them."""

    def __init__(self, config: Config, classes: ClassTable | None, image_size: int, output_range: str,
                 device: torch.device) -> None:
        self.gan = make_loss(config.loss)
        self.mode_seeking = config.loss.mode_seeking
        self.classifier = None
        if config.loss.classifier:  # loss.classifier: a frozen judge's cross-entropy joins G's loss (judge_loss.py)
            if classes is None:
                raise InputError("loss.classifier needs the data's class table (TrainingStep(..., classes=...))")
            self.classifier = JudgeLoss(config.loss.classifier, classes, image_size, output_range, device)
        self.classifier_weight = config.loss.classifier_weight

    def fake_labels(self, labels: Tensor) -> Tensor:
        """The labels G draws for: the batch's, or with mode seeking, pairs (the second half repeats the first half's
        labels with other noise)."""
        if not self.mode_seeking:
            return labels
        half = len(labels) // 2
        return torch.cat([labels[:half], labels[:half], labels[2 * half:]])

    def discriminator(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        return self.gan.discriminator(real_scores.float(), fake_scores.float())

    def generator(self, scores: Tensor, fake: Tensor, labels: Tensor, z: Tensor) -> Tensor:
        loss = self.gan.generator(scores.float())
        if self.mode_seeking:
            loss = loss + self.mode_seeking * mode_seeking_term(fake.float(), z)
        if self.classifier is not None:
            loss = loss + self.classifier_weight * self.classifier(fake, labels)
        return loss


class Augmentation:
    """`train.augment` applied to a batch D is about to see; the batch as is without it.

    Each batch's random stream is a function of (train.seed, step, which input, rank)
    (diff_augment.batch_rng), so resuming a run redraws exactly the same augmentations.
    """

    def __init__(self, policy: str, seed: int, output_range: str, ranks: Ranks, device: torch.device) -> None:
        self.policy = parse_policy(policy)
        self.seed, self.rank, self.device = seed, ranks.rank, device
        self.background = -1.0 if output_range == "tanh" else 0.0  # the value of blank paper

    def __call__(self, images: Tensor, kind: DInput, index: int) -> Tensor:
        if not self.policy:
            return images
        stream = batch_rng(self.seed, index, kind + 3 * self.rank, self.device)
        return augment(images, self.policy, stream, self.background)


class GuardedUpdate:
    """The optimiser updates of one step, each applied only if its loss is finite on every rank.

    `begin` notes BatchNorm's running statistics; `apply` runs one update (or skips it and
    names it in `skipped`); `finish` lets the fp16 gradient scaler learn from the updates
    that ran and, after a skip, puts the statistics back, so a bad step changes nothing.
    """

    def __init__(self, dtype: torch.dtype | None, device: torch.device, ranks: Ranks, statistics: list[Tensor]) -> None:
        self.ranks = ranks
        # Scales fp16 losses so small gradients do not underflow; a pass-through otherwise.
        self.scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
        self.statistics = statistics
        self.saved_statistics = [buffer.clone() for buffer in statistics]
        self.skipped: dict[str, float] = {}  # name -> the non-finite loss, this step
        self.applied = 0  # updates applied this step

    def begin(self) -> None:
        self.skipped, self.applied = {}, 0
        torch._foreach_copy_(self.saved_statistics, self.statistics)

    def apply(self, optimizer: torch.optim.Optimizer, loss: Tensor, name: str) -> Tensor:
        """One optimiser update on `loss` unless its mean over the ranks is not finite; returns that mean.

        Gradients left from other losses are cleared first. The mean makes every rank
        decide alike (a skipped update runs no backward pass, so no DDP all-reduce).
        """
        mean = mean_over_ranks(loss.detach(), self.ranks)
        if not torch.isfinite(mean):  # a host read: free on the CPU, a wait on CUDA (module docstring)
            self.skipped[name] = mean.item()
            return mean
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.applied += 1
        return mean

    def finish(self) -> bool:
        """Whether every update of the step was applied; after a skip the statistics are as `begin` found them."""
        if self.applied:  # (fp16) the scaler updates from the optimiser steps it has seen
            self.scaler.update()
        if self.skipped:
            torch._foreach_copy_(self.statistics, self.saved_statistics)
        return not self.skipped


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


@torch.no_grad()
def _update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model for weights; buffers (BN statistics) copied.

    `step` warms the decay up as (1 + step) / (10 + step) until it reaches
    train.ema_decay, so early samples follow the model instead of its random init.
    """
    ema_params, params = list(ema.parameters()), list(model.parameters())
    torch._foreach_lerp_(ema_params, params, 1.0 - decay)
    for ema_buffer, buffer in zip(ema.buffers(), model.buffers()):
        ema_buffer.copy_(buffer)
