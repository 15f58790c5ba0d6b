"""Benchmark: paper28's discriminator, fused vs naive tiled-label concatenation.

D forward + backward (the work of one D update on a real and a fake batch) at 3,740
classes and batch 64, in one process, alternating fused and naive windows after a
warm-up, in fp32 and under bf16 autocast (where the device has native bf16). Prints
JSON with steps/s per window, the medians and the median ratio fused/naive.
`--blas-linear` runs D's FC layer through the BLAS (nn.Linear) instead of oneDNN
(cond_lsgan/fast/onednn.py), for comparison: the layer is the same in both modes, so
its speed sets how far the ratio can go.

    python benchmarks/concat.py [--classes 3740] [--batch 64] [--windows 5] [--steps 5] [--blas-linear]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
import time

import torch

from cond_lsgan.config import ModelConfig
from cond_lsgan.models import build_models
from cond_lsgan.fast import use_fast_paths
from cond_lsgan.process import keep_freed_memory
from cond_lsgan.runtime import cpu_has_bf16


def d_step(discriminator, images, labels, precision: str, device: torch.device) -> None:
    discriminator.zero_grad(set_to_none=True)  # as training's D update does: fresh gradients, no accumulation
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()
    with autocast:
        scores = discriminator(images, labels)
    scores.float().square().mean().backward()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=3740)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5, help="D steps per window")
    parser.add_argument("--blas-linear", action="store_true", help="D's FC layer by the BLAS, not oneDNN")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cpu":
        keep_freed_memory()  # the allocator setting `cond-lsgan train` uses on the CPU (cond_lsgan/process.py)
    torch.manual_seed(0)
    _, discriminator = build_models(ModelConfig(arch="paper28", conditional=True, z_dim=1024), args.classes, 28)
    if not args.blas_linear:  # as training with train.fast_paths = true: D's FC layer through oneDNN on the CPU
        use_fast_paths(discriminator, device)
    discriminator.to(device)
    images = torch.rand(args.batch, 1, 28, 28, device=device)
    labels = torch.randint(0, args.classes, (args.batch,), device=device)

    def window(mode: str, precision: str) -> float:
        discriminator.conv2.mode = mode
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(args.steps):
            d_step(discriminator, images, labels, precision, device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return args.steps / (time.perf_counter() - start)

    results = {}
    # bf16 where the device computes it natively; emulated bf16 on a CPU without it times nothing a run uses
    native_bf16 = device.type == "cuda" or cpu_has_bf16()
    if not native_bf16:
        results["bf16"] = "not timed: this CPU has no native bf16 (emulated, and training uses fp32 here)"
    for precision in ("fp32", "bf16") if native_bf16 else ("fp32",):
        for mode in ("fused", "naive"):
            window(mode, precision)  # warm-up
        rates = {"fused": [], "naive": []}
        for _ in range(args.windows):
            for mode in ("fused", "naive"):
                rates[mode].append(window(mode, precision))
        ratios = [f / n for f, n in zip(rates["fused"], rates["naive"])]
        results[precision] = {
            "fused_steps_per_s": [round(r, 2) for r in rates["fused"]],
            "naive_steps_per_s": [round(r, 2) for r in rates["naive"]],
            "fused_median": round(statistics.median(rates["fused"]), 2),
            "naive_median": round(statistics.median(rates["naive"]), 2),
            "median_ratio_fused_over_naive": round(statistics.median(ratios), 2),
        }
    print(json.dumps({
        "benchmark": "paper28 D forward+backward, fused vs naive tiled-label concat",
        "classes": args.classes, "batch": args.batch, "device": str(device), "fc_layer": "blas" if args.blas_linear else "onednn",
        "machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
        "torch": torch.__version__, "results": results,
    }, indent=2))


if __name__ == "__main__":
    main()
