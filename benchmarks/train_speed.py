"""Benchmark: cond-lsgan's training speed against the reference loop, same model (seed32), same batch (64).

The reference loop (benchmarks/seed_baseline.py) and cond-lsgan's `TrainingStep` (the code
`cond-lsgan train` runs each step, default config) train on the same MNIST images (IDX
files, test split). Each runs in a worker process of its own, so each runs as it
would alone (cond-lsgan changes process-wide settings such as the allocator's; the reference code
keeps the defaults), and the workers take turns: after a warm-up, alternating windows
of about `--window` seconds (A B A B ...), one worker running while the others wait,
so load from other processes hits all alike. Reported are images/s per window, the
medians and the median of the per-pair ratios. FLOPs per step are counted with
FlopCounterMode on one step of each (the reference code's count is the work of the function
itself; ours is what our step executes for the same function), and achieved GFLOP/s
are set against the fp32 and bf16 peaks measured in the same run (bf16 only where the CPU has it) (`torch.mm` and a large
3x3 convolution, the better of the two; see `peak_rates`). A second
section times paper28 at 3,740 classes (configs/hwdb3740.toml, batch 64) the same way.

    python benchmarks/train_speed.py [--idx-dir ../shared/data/mnist] [--windows 5] [--window 4]
        [--ablation] [--compile] [--skip-paper28] [--threads N]

`--ablation` adds cond-lsgan variants (fp32; bf16 with `train.fast_paths = false`, i.e. the
reference code's plain Upsample + Conv3 and nn.Conv2d layers instead of UpsampleConv2d and FoldConv2d)
and the reference loop with cond-lsgan's allocator setting (`process.keep_freed_memory`, which
`cond-lsgan train` applies and our workers apply too), which the reference code's code does not make
but which speeds it up too;
`--compile` adds train.compile=true (its compile time is reported too). On a machine
that other processes keep busy (load average above the core count), every multi-threaded
op waits for a descheduled sibling thread at its closing barrier, which distorts all
timings (oneDNN's bf16 weight-gradient kernels worst of all); `--threads 1` then gives
steadier, per-core numbers.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import sys
import time
from datetime import date
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from seed_baseline import DEFAULT_IDX_DIR, SeedLoop, load_mnist  # noqa: E402

from cond_lsgan.config import Config, load_config  # noqa: E402
from cond_lsgan.training.batches import GlyphBatches  # noqa: E402
from cond_lsgan.process import keep_freed_memory  # noqa: E402
from cond_lsgan.runtime import cpu_has_bf16, precision_name  # noqa: E402
from cond_lsgan.training.step import TrainingStep  # noqa: E402
from data_tools.mnist import CLASSES, resize_images  # noqa: E402
from data_tools.store import ClassTable, GlyphSet  # noqa: E402

BATCH = 64
PAPER28_CLASSES = 3740

# name -> (config file, overrides); "seed" is the reference code's own loop.
VARIANTS = {
    "cond_lsgan": ("mnist.toml", []),
    "cond_lsgan_fp32": ("mnist.toml", ["train.precision=fp32"]),
    "cond_lsgan_plain_layers": ("mnist.toml", ["train.fast_paths=false"]),
    "cond_lsgan_compiled": ("mnist.toml", ["train.compile=true"]),
    "paper28": ("hwdb3740.toml", []),
}


def best_rate(run: Callable[[], None], flops: float, reps: int = 10) -> float:
    """Best GFLOP/s over `reps` calls (other load only ever slows a call down)."""
    run()
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return flops / best / 1e9


def peak_rates(dtype: torch.dtype) -> dict[str, float]:
    """GFLOP/s of `torch.mm` on 2048 x 2048 squares and of a large 3x3 convolution (oneDNN).

    Both, because torch.mm's fp32 path is MKL's, which on AMD CPUs runs without AVX-512
    (about 105 GFLOP/s a core here) while oneDNN's fp32 convolutions reach about 250;
    in bf16 both go through oneDNN. The larger is taken as the machine's peak.
    """
    a, b = torch.randn(2048, 2048, dtype=dtype), torch.randn(2048, 2048, dtype=dtype)
    x = torch.randn(64, 128, 32, 32, dtype=dtype).contiguous(memory_format=torch.channels_last)
    w = torch.randn(128, 128, 3, 3, dtype=dtype).contiguous(memory_format=torch.channels_last)
    return {"mm": round(best_rate(lambda: torch.mm(a, b), 2 * 2048**3), 1),
            "conv3x3": round(best_rate(lambda: torch.nn.functional.conv2d(x, w, padding=1), 2 * 64 * 128 * 128 * 9 * 32 * 32), 1)}


def measure_peaks(before: dict | None = None) -> dict[str, dict[str, float]]:
    """Peaks for fp32 and bf16 (the better of this and an earlier measurement, if given).

    bf16 only where the CPU computes it natively: emulated bf16 runs many times slower than
    fp32 (minutes for these two products), no run here uses it, and its peak says nothing.
    """
    dtypes = {"fp32": torch.float32, **({"bf16": torch.bfloat16} if cpu_has_bf16() else {})}
    peaks = {name: peak_rates(dtype) for name, dtype in dtypes.items()}
    if before:
        peaks = {name: {kind: max(rate, before[name][kind]) for kind, rate in rates.items()} for name, rates in peaks.items()}
    for rates in peaks.values():
        rates["peak"] = max(rates["mm"], rates["conv3x3"])
    return peaks


class OurLoop:
    """cond-lsgan's training step over in-memory batches, as the loop in training.train drives it."""

    def __init__(self, config: Config, glyphs: GlyphSet) -> None:
        device = torch.device("cpu")
        keep_freed_memory()  # the process setting `cond-lsgan train` makes on the CPU
        self.trainer = TrainingStep(config, len(glyphs.classes), glyphs.image_size, device)
        self.batches = GlyphBatches(glyphs, config.train.batch_size, config.train.seed, device)
        self.index = 0
        self.loss_sum = torch.zeros(2)

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.loss_sum += self.trainer.step(*self.batches.batch(self.index), self.index)
            self.index += 1

    def describe(self) -> dict:
        settings = self.trainer.settings
        return {"precision": precision_name(self.trainer.dtype), "channels_last": settings.channels_last,
                "compile": settings.compile, "fast_paths": settings.fast_paths}


def mnist32(idx_dir: str) -> tuple[np.ndarray, np.ndarray, GlyphSet]:
    """MNIST test images at 28 (the reference code's input) and as the 32x32 glyph set `data-tools mnist --size 32` stores."""
    images, labels = load_mnist(idx_dir, "test")
    glyphs = GlyphSet(resize_images(images, 32), labels.astype(np.int32), ClassTable(list(CLASSES)), ["MNIST test"],
                      np.zeros(len(labels), np.int32), {})
    return images, labels, glyphs


def random_glyphs(classes: int, size: int = 28) -> GlyphSet:
    """Random pixels, four images a class: the speed does not depend on what the images show."""
    count = 4 * classes
    rng = np.random.default_rng(0)
    return GlyphSet(rng.integers(0, 256, (count, size, size), dtype=np.uint8), np.arange(count, dtype=np.int32) % classes,
                    ClassTable([f"c{i}" for i in range(classes)]), ["random"], np.zeros(count, np.int32), {})


def build_runner(name: str, idx_dir: str):
    if name.startswith("seed"):
        if name == "seed_tuned_allocator":  # the reference loop with cond-lsgan's allocator setting
            keep_freed_memory()
        images, labels, _ = mnist32(idx_dir)
        return SeedLoop(images, labels, BATCH), {"precision": "fp32", "channels_last": False, "compile": False}
    config_file, overrides = VARIANTS[name]
    config = load_config(REPO / "configs" / config_file, overrides)
    glyphs = random_glyphs(PAPER28_CLASSES) if name == "paper28" else mnist32(idx_dir)[2]
    loop = OurLoop(config, glyphs)
    return loop, loop.describe()


def count_flops(run: Callable[[int], None]) -> int:
    """FLOPs of one step (matmuls and convolutions, forward and backward)."""
    with FlopCounterMode(display=False) as counter:
        run(1)
    return counter.get_total_flops()


def timed(run: Callable[[int], None], steps: int) -> float:
    """images/s over `steps` steps."""
    start = time.perf_counter()
    run(steps)
    return steps * BATCH / (time.perf_counter() - start)


def worker(connection, name: str, idx_dir: str, window_s: float, threads: int | None) -> None:
    """Build one runner, warm it up, then run windows of steps when asked (None ends)."""
    if threads:
        torch.set_num_threads(threads)
    runner, description = build_runner(name, idx_dir)
    start = time.perf_counter()
    runner.run(3)  # warm-up: first-call allocations, oneDNN kernels, torch.compile
    warm_up_s = time.perf_counter() - start
    flops = count_flops(runner.run)
    steps = max(1, round(window_s * timed(runner.run, 2) / BATCH))
    connection.send({**description, "gflop_per_step": round(flops / 1e9, 2), "warm_up_seconds": round(warm_up_s, 1),
                     "steps_per_window": steps})
    while connection.recv() is not None:
        connection.send(timed(runner.run, steps))
    losses = runner.last_losses if name.startswith("seed") else (runner.loss_sum / max(runner.index, 1)).tolist()
    connection.send([round(x, 4) for x in losses])


def alternate(names: list[str], args: argparse.Namespace) -> tuple[dict[str, dict], dict[str, list[float]]]:
    """Start a worker per name (one at a time), then time them in turn; returns results and window rates by name."""
    context = multiprocessing.get_context("spawn")
    workers = {}
    for name in names:
        parent, child = context.Pipe()
        process = context.Process(target=worker, args=(child, name, args.idx_dir, args.window, args.threads))
        process.start()
        workers[name] = (parent, process, parent.recv())  # waits until built and warmed up
    rates: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(args.windows):
        for name, (connection, _, _) in workers.items():
            connection.send("run")
            rates[name].append(connection.recv())
    results = {}
    for name, (connection, process, description) in workers.items():
        connection.send(None)
        losses = connection.recv()
        process.join()
        median = statistics.median(rates[name])
        results[name] = {**description, "images_per_s": [round(r, 1) for r in rates[name]],
                         "median_images_per_s": round(median, 1),
                         "achieved_gflop_per_s": round(median / BATCH * description["gflop_per_step"], 1),
                         "mean_losses_d_g": losses}
    return results, rates


def add_shares(entry: dict, peaks: dict[str, dict[str, float]]) -> None:
    """share_of_peak: achieved GFLOP/s over the peak of the entry's precision."""
    entry["share_of_peak"] = round(entry["achieved_gflop_per_s"] / peaks[entry["precision"]]["peak"], 3)


def load() -> float:
    return round(os.getloadavg()[0], 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idx-dir", default=str(DEFAULT_IDX_DIR), help="folder with the MNIST IDX files (test split used)")
    parser.add_argument("--windows", type=int, default=5, help="timed windows per runner")
    parser.add_argument("--window", type=float, default=4.0, help="seconds per window (about)")
    parser.add_argument("--ablation", action="store_true", help="also time fp32 and the reference code's plain layers")
    parser.add_argument("--compile", action="store_true", help="also time train.compile=true")
    parser.add_argument("--skip-paper28", action="store_true")
    parser.add_argument("--threads", type=int, help="torch threads in each worker (default: torch's, one per core); "
                        "1 gives steadier numbers on a machine other processes keep busy")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)  # for the peak measurements
    load_before = load()
    peaks = measure_peaks()

    names = ["seed", "cond_lsgan"]
    names += ["cond_lsgan_fp32", "cond_lsgan_plain_layers", "seed_tuned_allocator"] if args.ablation else []
    names += ["cond_lsgan_compiled"] if args.compile else []
    seed32, rates = alternate(names, args)
    for name in names[1:]:
        ratios = [ours / seed for ours, seed in zip(rates[name], rates["seed"])]
        seed32[name]["ratios_to_seed"] = [round(r, 2) for r in ratios]
        seed32[name]["median_ratio_to_seed"] = round(statistics.median(ratios), 2)
        seed32[name]["seed_equivalent_gflop_per_s"] = round(
            seed32[name]["median_images_per_s"] / BATCH * seed32["seed"]["gflop_per_step"], 1)
    if "seed_tuned_allocator" in rates:  # the conservative comparison: the reference loop given our allocator setting too
        ratios = [ours / seed for ours, seed in zip(rates["cond_lsgan"], rates["seed_tuned_allocator"])]
        seed32["cond_lsgan"]["median_ratio_to_seed_tuned_allocator"] = round(statistics.median(ratios), 2)
    result = {"benchmark": "training images/s, cond-lsgan vs the reference loop (seed32, batch 64)",
              "date": date.today().isoformat(), "machine": platform.processor() or platform.machine(),
              "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(), "torch": torch.__version__,
              "seed32": seed32}
    if not args.skip_paper28:
        result["paper28"] = {"classes": PAPER28_CLASSES, "config": "configs/hwdb3740.toml",
                             **alternate(["paper28"], args)[0]["paper28"]}
    peaks = measure_peaks(peaks)  # again at the end; the better of the two is the machine's
    result["peak_gflop_per_s"] = peaks
    for entry in [*seed32.values(), result.get("paper28")]:
        if entry:
            add_shares(entry, peaks)
    result["load_average_1min"] = {"before": load_before, "after": load()}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
