"""One optimisation step of a GAN, and everything a checkpoint holds of it.

`TrainingStep` owns the models, the EMA generator, the optimisers, the gradient scaler
and the noise stream. `step()` runs the G and D updates in `train.order` and the EMA
update; `state_dict()` / `load_state_dict()` are what a checkpoint saves and resume
restores. It knows nothing of run folders, logs or signals (loop.py), so benchmarks
and tests drive exactly the code the training loop runs.

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
from pathlib import Path

import torch
from torch import Tensor, nn

from ..checkpoint import mismatch_detail
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
        torch.manual_seed(settings.seed)  # the initial weights are a function of train.seed
        generator, discriminator = build_models(config.model, num_classes, image_size)
        if config.model.label_init == "glyphs":  # Φ's rows start from each class's glyphs (models/label_init.py)
            if label_rows is None:
                raise InputError("model.label_init = 'glyphs' needs the rows from the data (TrainingStep(..., label_rows=...))")
            set_label_rows([generator, discriminator], label_rows)
        if settings.fast_paths:  # same parameters and state dicts, faster layer forms for this device
            use_fast_paths(generator, device)
            use_fast_paths(discriminator, device)
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
        self.mode_seeking = config.loss.mode_seeking
        self.augment_policy = parse_policy(settings.augment)
        self.background = -1.0 if generator.output_range == "tanh" else 0.0  # the value of blank paper, for augmentation
        self.index = 0  # the step being computed (augmentation draws from it)
        self.classifier = None
        if config.loss.classifier:  # loss.classifier: a frozen judge's cross-entropy joins G's loss (judge_loss.py)
            if classes is None:
                raise InputError("loss.classifier needs the data's class table (TrainingStep(..., classes=...))")
            self.classifier = JudgeLoss(config.loss.classifier, classes, image_size, generator.output_range, device)
        self.classifier_weight = config.loss.classifier_weight
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
        self.index = index
        torch._foreach_copy_(self.saved_statistics, self.statistics)
        real = pixels_to_model(real_pixels, self.generator.output_range)  # (B, 1, H, W)
        real = real.contiguous(memory_format=self.memory_format)
        # Every rank draws the global batch's noise and keeps its slice: the noise of a one-process run.
        z = shard(self.generator.sample_z(len(real) * self.ranks.world, self.noise_rng, self.device), self.ranks)  # (B, z)
        fake_labels = labels
        if self.mode_seeking:  # pairs: the second half of G's batch draws the first half's labels with other noise
            half = len(labels) // 2
            fake_labels = torch.cat([labels[:half], labels[:half], labels[2 * half:]])
        with autocast(self.device, self.dtype):
            fake = self.run_generator(z, fake_labels)
        if self.settings.order == "g_then_d":  # the reference code: G step, then D on the same (detached) images
            g_loss = self._generator_update(fake, fake_labels, z)
            d_loss = self._discriminator_update(real, labels, fake.detach(), fake_labels)
        else:  # the paper: D step, then G step on the same z
            d_loss = self._discriminator_update(real, labels, fake.detach(), fake_labels)
            g_loss = self._generator_update(fake, fake_labels, z)
        if len(self.skipped) < 2:  # (fp16) the scaler updates from the optimiser steps it has seen
            self.scaler.update()
        if self.skipped:
            torch._foreach_copy_(self.statistics, self.saved_statistics)
        else:
            _update_ema(self.generator_ema, self.generator, min(self.settings.ema_decay, (1 + index) / (10 + index)))
        return torch.stack([d_loss, g_loss])

    def _generator_update(self, fake: Tensor, labels: Tensor, z: Tensor) -> Tensor:
        # G's loss needs D's gradient with respect to its input only; freezing D skips
        # the weight-gradient half of D's backward (D's .grad is cleared before its own
        # update anyway, so results are unchanged).
        self.discriminator.requires_grad_(False)
        try:
            with autocast(self.device, self.dtype):
                scores = self.frozen_discriminator(self._for_discriminator(fake, 2), labels)
        finally:
            self.discriminator.requires_grad_(True)
        loss = self.loss.generator(scores.float())
        if self.mode_seeking:
            loss = loss + self.mode_seeking * mode_seeking_term(fake.float(), z)
        if self.classifier is not None:
            loss = loss + self.classifier_weight * self.classifier(fake, labels)
        return self._update(self.optimizer_g, loss, "g_loss")

    def _discriminator_update(self, real: Tensor, labels: Tensor, fake: Tensor, fake_labels: Tensor) -> Tensor:
        with autocast(self.device, self.dtype):
            real_scores = self.run_discriminator(self._for_discriminator(real, 0), labels)
            fake_scores = self.run_discriminator(self._for_discriminator(fake, 1), fake_labels)
        return self._update(self.optimizer_d, self.loss.discriminator(real_scores.float(), fake_scores.float()), "d_loss")

    def _for_discriminator(self, images: Tensor, which: int) -> Tensor:
        """`train.augment` applied to a batch D is about to see (0 real, 1 fake for D, 2 fake for G); as is without it."""
        if not self.augment_policy:
            return images
        stream = batch_rng(self.settings.seed, self.index, which + 3 * self.ranks.rank, self.device)
        return augment(images, self.augment_policy, stream, self.background)

    def _update(self, optimizer: torch.optim.Optimizer, loss: Tensor, name: str) -> Tensor:
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
        return mean

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
