"""Where and in what arithmetic the models run: device, autocast precision, the optimiser, seeds.

Training, generation and evaluation all ask the same questions (which device does
"auto" mean, does a named device exist here, does this CPU compute bf16 natively, is
fp16 allowed here, what seeds the k-th random stream of a run), so the answers live
here, apart from the training loop.
"""

from __future__ import annotations

import contextlib

import torch

from .data_tools_api import InputError


def resolve_device(name: str, option: str = "train.device") -> torch.device:
    """`train.device` / `--device` (named by `option`) -> a torch device that exists here; a one-line error otherwise.

    torch accepts names of devices this machine lacks ("mps", "cuda:7") and of devices no
    model runs on ("meta"); each of those would fail later with a RuntimeError, so they
    are refused here, with the devices that do exist.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    here = available_devices()
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(f"{option} {name!r} is not a device name; devices here: auto, {', '.join(here)}") from None
    if device.type == "cpu" and device.index in (None, 0):
        return device
    if device.type == "cuda" and torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count():
        return device
    if device.type == "mps" and device.index in (None, 0) and "mps" in here:
        return device
    raise InputError(f"{option} {name!r} is not a device this machine computes on; devices here: auto, {', '.join(here)}")


def available_devices() -> list[str]:
    """The names `resolve_device` accepts besides "auto": cpu, each CUDA device, mps where present."""
    names = ["cpu"] + [f"cuda:{index}" for index in range(torch.cuda.device_count() if torch.cuda.is_available() else 0)]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        names.append("mps")
    return names


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


def mixed_seed(seed: int, index: int) -> int:
    """The seed of stream `index` (an epoch, a step, a round) of a run seeded with `seed`: seed * 1_000_003 + index.

    One formula for every derived stream, so that streams of one seed never meet: for
    indices below the prime 1_000_003, different (seed, index) pairs give different seeds.
    Callers that fold in more (a batch, a rank) or need a 63-bit seed do so on the result.
    """
    return seed * 1_000_003 + index


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
