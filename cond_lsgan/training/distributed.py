"""Data-parallel training over the processes torchrun starts: set-up, teardown, sharding.

`torchrun --nproc-per-node N -m cond_lsgan train ...` starts N copies of the command with
RANK, WORLD_SIZE and LOCAL_RANK (and MASTER_ADDR, MASTER_PORT) set. `from_environment`
reads them; `process_group` joins the group for the run (nccl on CUDA, each rank on
cuda:LOCAL_RANK; gloo on the CPU) and leaves it after. What makes N ranks compute what
one process computes on the same data:

- `train.batch_size` is the global batch. Every rank picks the same global batch and
  the same noise (same seeds, same order) and keeps its own contiguous slice (`shard`).
- DDP averages the gradients of the ranks' mean losses over equal slices: the gradient
  of the global batch's mean loss.
- BatchNorm layers become synchronised ones (`use_global_batch_statistics`), so batch
  statistics are those of the global batch. torch's SyncBatchNorm runs only on GPUs;
  on CPU ranks `CPUSyncBatchNorm` does the same with two all-reduces.

What remains different is float summation order. This lives outside loop.py so the
loop reads the same for one process and for many: without torchrun's variables `Ranks()`
is a single rank and every helper here is the identity.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from dataclasses import dataclass
from typing import Iterator, Mapping

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from ..data_tools_api import InputError
from ..runtime import mixed_seed

_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class Ranks:
    """Where this process stands among the training processes; the default is a lone process."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    distributed: bool = False  # started by torchrun (even as its only rank): DDP and a process group

    @property
    def main(self) -> bool:
        """Rank 0 alone writes the run folder (config, logs, metrics, grids, checkpoints)."""
        return self.rank == 0


def from_environment(environ: Mapping[str, str] = os.environ) -> Ranks:
    """The ranks torchrun describes in RANK, WORLD_SIZE and LOCAL_RANK; a lone process when none is set."""
    present = [name for name in _VARIABLES if name in environ]
    if not present:
        return Ranks()
    if len(present) < len(_VARIABLES):
        missing = [name for name in _VARIABLES if name not in environ]
        raise InputError(f"{', '.join(present)} set but not {', '.join(missing)}: start distributed training with torchrun")
    try:
        rank, world, local_rank = (int(environ[name]) for name in _VARIABLES)
    except ValueError:
        values = ", ".join(f"{name}={environ[name]!r}" for name in _VARIABLES)
        raise InputError(f"RANK, WORLD_SIZE and LOCAL_RANK must be whole numbers, got {values}") from None
    if not (world >= 1 and 0 <= rank < world and 0 <= local_rank < world):
        raise InputError(f"RANK={rank}, LOCAL_RANK={local_rank} do not fit WORLD_SIZE={world}")
    return Ranks(rank, world, local_rank, distributed=True)


def per_rank_batch(batch_size: int, ranks: Ranks) -> int:
    """Each rank's share of the global `train.batch_size`."""
    if batch_size % ranks.world:
        raise InputError(f"train.batch_size={batch_size} is the global batch and must divide among the "
                         f"{ranks.world} ranks (WORLD_SIZE); try {batch_size - batch_size % ranks.world or ranks.world}")
    return batch_size // ranks.world


def rank_device(device: torch.device, ranks: Ranks) -> torch.device:
    """Under torchrun each rank trains on its own GPU, cuda:LOCAL_RANK; a CPU run stays on the CPU."""
    if not ranks.distributed or device.type != "cuda":
        return device
    if device.index is not None:
        raise InputError(f"train.device {str(device)!r} names one GPU, but under torchrun each rank uses "
                         "cuda:LOCAL_RANK; set train.device to cuda or auto")
    if ranks.local_rank >= torch.cuda.device_count():
        raise InputError(f"LOCAL_RANK is {ranks.local_rank} but this machine has {torch.cuda.device_count()} CUDA devices")
    return torch.device("cuda", ranks.local_rank)


@contextlib.contextmanager
def process_group(ranks: Ranks, device: torch.device) -> Iterator[None]:
    """Join the process group for the body and leave it afterwards, however the body ends."""
    if not ranks.distributed:
        yield
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    try:
        store, _, _ = next(dist.rendezvous("env://", ranks.rank, ranks.world))
    except ValueError as error:  # no MASTER_ADDR or MASTER_PORT
        raise InputError(f"cannot join the process group: {error}") from None
    # torchrun's workers share its rendezvous store, which keeps the keys of an attempt
    # that died: after a --max-restarts restart the ranks would read each other's old
    # addresses and fail to connect (pytorch/pytorch#135712). Keys of their own per attempt.
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    store = dist.PrefixStore(f"cond_lsgan/attempt_{attempt}", store)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", store=store, rank=ranks.rank, world_size=ranks.world)
    try:
        yield
    finally:
        dist.destroy_process_group()


def backend() -> str:
    return dist.get_backend() if dist.is_initialized() else "none"


def shard(batch: Tensor, ranks: Ranks) -> Tensor:
    """This rank's contiguous slice (along dim 0) of a global batch: (B, ...) -> (B / world, ...)."""
    if ranks.world == 1:
        return batch
    size = len(batch) // ranks.world
    return batch[ranks.rank * size : (ranks.rank + 1) * size]


def mean_over_ranks(value: Tensor, ranks: Ranks) -> Tensor:
    """The mean of a tensor over all ranks (the tensor itself for one rank)."""
    if ranks.world == 1:
        return value
    total = value.detach().clone()
    dist.all_reduce(total)
    return total / ranks.world


def max_over_ranks(value: int, ranks: Ranks, device: torch.device) -> int:
    """The largest of the ranks' values of a host integer, so all ranks decide alike."""
    if ranks.world == 1:
        return value
    flag = torch.tensor([value], dtype=torch.int64, device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return int(flag.item())


def check_same_step(step: int, ranks: Ranks, device: torch.device) -> None:
    """Every rank must resume from the same step; a run folder some ranks cannot see would make them differ."""
    if ranks.world == 1:
        return
    highest, lowest = max_over_ranks(step, ranks, device), -max_over_ranks(-step, ranks, device)
    if highest != lowest:
        raise InputError(f"the ranks resume from different steps ({lowest} to {highest}): "
                         "the run folder must be on a file system every rank sees")


def seed_dropout(seed: int, step: int, ranks: Ranks) -> None:
    """Give each rank its own dropout masks, from (seed, step at which the run (re)started, rank).

    All ranks seed alike so their initial weights agree; left so, rank r's i-th sample would
    get the dropout mask of rank 0's i-th sample. Only dropout draws from torch's global RNG
    during training (noise, batches and grids have their own generators). The masks are not
    a single process's, and a resumed distributed run's masks differ from an uninterrupted
    one's: exact DDP resume holds for models without dropout (paper28), not seed32.
    """
    if ranks.world > 1:
        torch.manual_seed((mixed_seed(seed, step) * 1_009 + ranks.rank) % 2**63)


def data_parallel(module: nn.Module, device: torch.device) -> nn.Module:
    """`module` under DDP: its gradients averaged over the ranks during the backward pass.

    Buffers are not broadcast from rank 0 at each forward pass: with synchronised BatchNorm
    the running statistics agree on every rank anyway (without it, each rank keeps its own,
    and checkpoints hold rank 0's). Newer torch names the option `forward_sync_buffers`.
    """
    options = inspect.signature(DistributedDataParallel).parameters
    no_buffer_sync = {"forward_sync_buffers": False} if "forward_sync_buffers" in options else {"broadcast_buffers": False}
    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None, **no_buffer_sync)


def use_global_batch_statistics(module: nn.Module, device: torch.device) -> nn.Module:
    """Swap every BatchNorm layer for a synchronised one holding the same parameters and buffers.

    Same state-dict keys, so checkpoints load into plain models. torch's SyncBatchNorm on
    CUDA; `CPUSyncBatchNorm` on the CPU, where torch has none.
    """
    kind = nn.SyncBatchNorm if device.type == "cuda" else CPUSyncBatchNorm
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            synced = kind(child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats)
            if child.affine:
                synced.weight, synced.bias = child.weight, child.bias
            synced.running_mean, synced.running_var = child.running_mean, child.running_var
            synced.num_batches_tracked = child.num_batches_tracked
            setattr(module, name, synced.train(child.training))
        else:
            use_global_batch_statistics(child, device)
    return module


class CPUSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm over the global batch for CPU ranks (torch's SyncBatchNorm runs only on GPUs).

    In training, two differentiable all-reduces: the channel sums (the mean), then the sums
    of squared deviations from it (the variance, computed as a one-process BatchNorm does,
    without the cancellation of E[x²] - E[x]²). Their backward all-reduces the gradients,
    so every rank's input gradient is that of the global batch's loss. Every rank must hold
    the same number of samples (`shard` makes it so). In eval mode it is plain BatchNorm.
    """

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {input.dim()}-D")

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce  # noqa: PLC0415 - autograd-aware collectives

        dims = [0, *range(2, x.dim())]  # every dim but the channels
        shape = [1, -1] + [1] * (x.dim() - 2)  # (1, C, 1, ...)
        count = x.numel() // x.shape[1] * dist.get_world_size()
        h = x.float()
        mean = all_reduce(h.sum(dims)) / count  # (C,)
        centred = h - mean.view(shape)
        var = all_reduce(centred.square().sum(dims)) / count  # (C,), biased, as BatchNorm normalises
        if self.track_running_stats:
            self._track(mean.detach(), var.detach(), count)
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out.to(x.dtype)

    @torch.no_grad()
    def _track(self, mean: Tensor, var: Tensor, count: int) -> None:
        """Running statistics as nn.BatchNorm keeps them: unbiased variance, momentum or cumulative average."""
        self.num_batches_tracked.add_(1)
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_mean.mul_(1.0 - factor).add_(mean, alpha=factor)
        self.running_var.mul_(1.0 - factor).add_(var * (count / max(count - 1, 1)), alpha=factor)
