"""Will a run fit in memory? An estimate made before anything is allocated.

A batch size, `model.width` or image size too large for the machine otherwise fails deep
inside PyTorch, after the set-up: an allocator traceback, or on Linux the OOM killer with
no message at all. So training and generation first estimate the bytes they need and
compare them with what the device has; too much is one line that gives both numbers and
what to lower. `train.memory_check = false` skips the check in training, for a user who
knows better (swap, memory freed by the time it is needed); generation needs no such
switch, as a smaller `--batch-size` gives the same images.

The estimate allocates nothing: G and D are built on the `meta` device (shapes without
storage) and run forward on meta tensors at the batch size, and
`torch.autograd.graph.saved_tensors_hooks` sees each tensor autograd keeps for the
backward pass. Training needs parameters, gradients, Adam's two moments, the EMA copy of
G, the BatchNorm statistics and their copy from before the step, the activations of G's
graph and of two D graphs (D's real and fake batches; in `d_then_g` G's graph is alive
too) times ACTIVATION_FACTOR, on a GPU the data, and RUNTIME. Generation needs G's
weights, the largest input plus output of one layer at the batch (the CPU renders
CPU_SLICE images at a time) times GENERATION_FACTOR, the batch's noise and images, and
RUNTIME. Activations are counted in fp32; bf16 autocast keeps smaller ones, which pays
for its weight copies. Under torchrun each rank counts its slice of the batch, and CPU
ranks count each other too (they share the machine).

The factors and RUNTIME below come from measuring peak RSS against the estimate on the
CPU (the figures, with machine and date: docs/results.md, "Memory estimates against
measured peaks"). Small runs are overestimated (the fixed RUNTIME dominates them); large
ones, and a parameter-heavy D with its two weight gradients, lie close to the peak, on
either side. So only a run that close to the available memory is judged wrongly, and
`train.memory_check = false` still runs one refused wrongly.

The same meta models answer a question memory_check does not switch off: at one image a
rank (train.batch_size=1), a BatchNorm over features (paper28's BatchNorm1d after G's
first layer) normalises one value per channel, so its output is a constant and PyTorch
refuses it in training. `check_batch_of_one` turns that into one line before anything is
allocated; a model whose BatchNorms see a spatial map (seed32) trains at batch 1.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from .config import Config, ModelConfig
from .data_tools_api import GlyphSet, InputError
from .models import build_models

# Over the bytes autograd saves: the gradients of activations backward makes and the allocator's slack
# (the measured factors behind these three: docs/results.md, memory estimates).
ACTIVATION_FACTOR = 1.8
GENERATION_FACTOR = 2.0  # over the largest layer's input and output
RUNTIME = 256 * 2**20  # what PyTorch's kernels and autograd allocate on first use
FP32 = 4


@dataclass
class TrainingEstimate:
    """Bytes a training process needs on its device, by part."""

    generator_parameters: int  # G's fp32 parameters (the EMA copy has as many)
    discriminator_parameters: int
    state: int  # parameters, gradients, Adam moments, EMA, BatchNorm statistics
    activations: int  # kept for backward at the batch size, times ACTIVATION_FACTOR
    data: int  # the store on the device (0 on the CPU, where it is already in memory)

    @property
    def total(self) -> int:
        return self.state + self.activations + self.data + RUNTIME


def estimate_training(config: Config, num_classes: int, image_size: int, batch: int, data_bytes: int = 0) -> TrainingEstimate:
    """What one training process with a batch of `batch` images needs (nothing is allocated)."""
    with torch.device("meta"):
        generator, discriminator = build_models(config.model, num_classes, image_size)
    g_params, d_params = _bytes(generator.parameters()), _bytes(discriminator.parameters())
    g_buffers, d_buffers = _bytes(generator.buffers()), _bytes(discriminator.buffers())
    # weights, gradients, exp_avg, exp_avg_sq; G's EMA copy; BatchNorm statistics (G, EMA, and the copy of G's and D's);
    # D runs on two batches (real, fake), so its backward holds two weight gradients and their sum at once
    state = 4 * (g_params + d_params) + g_params + 3 * g_buffers + 2 * d_buffers + 2 * d_params
    labels = torch.zeros(batch, dtype=torch.int64, device="meta")
    z = generator.sample_z(batch, device="meta")
    with _SavedTensors(generator, discriminator) as saved:
        fake = generator(z, labels)
        g_saved = saved.reset()
        discriminator(torch.empty_like(fake, requires_grad=False), labels)
        d_saved = saved.reset()
    activations = int(ACTIVATION_FACTOR * (g_saved + 2 * d_saved))
    return TrainingEstimate(g_params, d_params, state, activations, data_bytes)


def estimate_generation(model: ModelConfig, num_classes: int, image_size: int, batch: int, render: int | None = None) -> int:
    """Bytes generating batches of `batch` images needs, G running `render` of them at a time (default: all).

    G's weights, its largest layer's input plus output at `render` images, and the
    batch's noise and uint8 images (twice: the slices and their concatenation).
    """
    with torch.device("meta"):
        generator = build_models(model, num_classes, image_size)[0]
    generator.eval()
    render = min(batch, render or batch)
    peak = 0

    def record(module: nn.Module, inputs: tuple, output: Tensor) -> None:
        nonlocal peak
        if not any(True for _ in module.children()):  # a leaf layer: its input and output are alive together
            tensors = {_storage(x): x for x in (*inputs, output) if isinstance(x, Tensor)}  # in place: one tensor
            peak = max(peak, _bytes(tensors.values()))

    labels = torch.zeros(render, dtype=torch.int64, device="meta")
    hook = nn.modules.module.register_module_forward_hook(record)
    try:
        with torch.no_grad():
            generator(generator.sample_z(render, device="meta"), labels)
    finally:
        hook.remove()
    output = render * image_size * image_size * FP32  # model_to_pixels' float copies of G's output
    weights = _bytes(generator.parameters()) + _bytes(generator.buffers())
    batch_bytes = batch * (generator.z_dim * FP32 + 2 * image_size**2)
    return weights + int(GENERATION_FACTOR * max(peak, output)) + batch_bytes + RUNTIME


def available_memory(device: torch.device, root: Path = Path("/")) -> int | None:
    """Bytes this process can still allocate on `device`; None where unknown (the check is then skipped).

    CPU: MemAvailable of `root`/proc/meminfo, or less where a cgroup limit (v2 memory.max,
    v1 memory.limit_in_bytes) leaves less. CUDA: the device's free memory. `root` lets a
    test give files of its own.
    """
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type != "cpu":
        return None
    found = []
    try:
        for line in (root / "proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    cgroups = root / "sys/fs/cgroup"
    for limit, usage in (("memory.max", "memory.current"), ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes")):
        try:
            found.append(int((cgroups / limit).read_text()) - int((cgroups / usage).read_text()))
        except (OSError, ValueError):  # no such cgroup file, or "max": no limit
            pass
    return min(found) if found else None


def check_training_memory(config: Config, num_classes: int, glyphs: GlyphSet, device: torch.device,
                          world: int = 1, available: int | None = None) -> None:
    """An InputError if training would need more memory than `device` has (`available`: measured when None)."""
    batch = config.train.batch_size // world
    check_batch_of_one(config, num_classes, glyphs.image_size, batch, world)
    if not config.train.memory_check:
        return
    data = 0 if device.type == "cpu" else glyphs.images.nbytes + 16 * len(glyphs)  # images, int64 labels and order
    estimate = estimate_training(config, num_classes, glyphs.image_size, batch, data)
    sharing = int(os.environ.get("LOCAL_WORLD_SIZE", "1")) if world > 1 and device.type == "cpu" else 1
    needed = estimate.total * sharing  # CPU ranks of one machine share its memory
    available = available_memory(device) if available is None else available
    if available is not None and needed > available:
        ranks_part = f" for {sharing} ranks" if sharing > 1 else ""
        raise InputError(
            f"training needs about {_size(needed)} of memory{ranks_part} (model state {_size(estimate.state)}, activations "
            f"at batch {batch:,} of {glyphs.image_size}px images {_size(estimate.activations)}"
            f"{f', data {_size(data)}' if data else ''}) but {device} has {_size(available)} available; "
            "lower train.batch_size, model.width or the image size, or set train.memory_check=false to try anyway")


def check_batch_of_one(config: Config, num_classes: int, image_size: int, batch: int, world: int = 1) -> None:
    """An InputError if a BatchNorm of G or D would normalise one value per channel at `batch` images a rank.

    Only a batch of one can (two images give two values); statistics synced over several
    ranks (train.sync_batchnorm) count every rank's image.
    """
    if batch > 1 or (world > 1 and config.train.sync_batchnorm):
        return
    with torch.device("meta"):
        generator, discriminator = build_models(config.model, num_classes, image_size)
    labels = torch.zeros(batch, dtype=torch.int64, device="meta")
    z = generator.sample_z(batch, device="meta")
    with torch.no_grad():
        images = generator.eval()(z, labels)  # running statistics: only the shape of D's input is wanted
        for part, run in (("generator", lambda: generator.train()(z, labels)),
                          ("discriminator", lambda: discriminator.train()(torch.empty_like(images), labels))):
            try:
                run()
            except ValueError as error:
                if "Expected more than 1 value per channel" not in str(error):
                    raise
                arch, setting = config.model.arch, f"train.batch_size={config.train.batch_size}"
                too_small = (f"{setting} is too small for model.arch={arch}" if world == 1 else
                             f"{setting} gives each of the {world} ranks one image, too few for model.arch={arch}")
                instead = ("use train.batch_size=2 or more (a store of at least 2 images)" if world == 1 else
                           f"use train.batch_size={2 * world} or more, or train.sync_batchnorm=true")
                raise InputError(f"{too_small}: its {part}'s BatchNorm would normalise one value per channel over a batch "
                                 f"of one image, which makes its output a constant (PyTorch refuses it); {instead}") from None


def check_generation_memory(model: ModelConfig, num_classes: int, image_size: int, batch: int, device: torch.device,
                            render: int | None = None, available: int | None = None) -> None:
    """An InputError if generating batches of `batch` images (`render` at a time) needs more memory than `device` has."""
    needed = estimate_generation(model, num_classes, image_size, batch, render)
    available = available_memory(device) if available is None else available
    if available is not None and needed > available:
        raise InputError(f"generating {image_size}px images in batches of {batch:,} needs about {_size(needed)} of memory "
                         f"but {device} has {_size(available)} available; lower --batch-size")


class _SavedTensors:
    """Counts the bytes autograd saves for backward (each storage once, parameters not: they are counted as state)."""

    def __init__(self, *models: nn.Module) -> None:
        self.parameters = {_storage(p) for model in models for p in model.parameters()}
        self.seen: set[int] = set()
        self.total = 0
        self.hooks = torch.autograd.graph.saved_tensors_hooks(self.pack, lambda packed: packed)

    def pack(self, tensor: Tensor) -> Tensor:
        key = _storage(tensor)
        if key not in self.parameters and key not in self.seen:
            self.seen.add(key)
            self.total += tensor.untyped_storage().nbytes()
        return tensor

    def reset(self) -> int:
        total, self.total = self.total, 0
        return total

    def __enter__(self) -> "_SavedTensors":
        self.hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.hooks.__exit__(*exc)


def _storage(tensor: Tensor) -> int:
    return tensor.untyped_storage()._cdata


def _bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _size(count: int) -> str:
    return f"{count / 2**30:,.1f} GiB" if count >= 2**30 else f"{count / 2**20:,.0f} MiB"
