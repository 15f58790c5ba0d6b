"""Benchmark: generated glyphs/s for paper28 at 3,740 classes, batch 1,024, written to a glyph store.

Runs the real `cond-lsgan generate` path (`generate.generate_store`: load the checkpoint,
generate every class, write the store) on a checkpoint with random weights made here
(configs/hwdb3740.toml, GB2312 level-1 classes), in alternating windows for precision
auto (bf16 where the CPU has it) and fp32, and reports glyphs/s for the whole command
and for generation alone (no store). FLOPs per glyph are counted with FlopCounterMode
on one batch; the floor is the glyphs/s the machine would reach running only those
FLOPs at its measured peak (train_speed.peak_rates), and `share_of_peak` is achieved
over floor.

    python benchmarks/generate_speed.py [--per-class 5] [--windows 3] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from train_speed import measure_peaks  # noqa: E402

from cond_lsgan.checkpoint import save_checkpoint  # noqa: E402
from cond_lsgan.config import load_config  # noqa: E402
from cond_lsgan.sampling.generate import GenerateRequest, generate_store  # noqa: E402
from cond_lsgan.sampling.loaded_generator import LoadedGenerator  # noqa: E402
from cond_lsgan.models import build_models  # noqa: E402
from data_tools.charsets import gb2312_level1  # noqa: E402
from data_tools.store import ClassTable  # noqa: E402

CLASSES = 3740
BATCH = 1024


def random_checkpoint(path: Path) -> None:
    """A paper28 checkpoint at 3,740 classes with its initial (random) weights."""
    config = load_config(REPO / "configs" / "hwdb3740.toml")
    torch.manual_seed(0)
    generator, discriminator = build_models(config.model, CLASSES, 28)
    save_checkpoint({"step": 0, "config": config.to_dict(), "classes": ClassTable(gb2312_level1()[:CLASSES]).to_dict(),
                     "image_size": 28, "generator": generator.state_dict(), "generator_ema": generator.state_dict(),
                     "discriminator": discriminator.state_dict()}, path)


def flops_per_glyph(loaded: LoadedGenerator) -> float:
    labels = torch.arange(BATCH) % CLASSES
    z = loaded.noise(BATCH, torch.Generator().manual_seed(0))
    with FlopCounterMode(display=False) as counter:
        loaded.render(z, labels)
    return counter.get_total_flops() / BATCH


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=5, help="glyphs per class in each window (5: 18,700 glyphs)")
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--threads", type=int, help="torch threads (default: one per core); 1 is steadier on a busy machine")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    peaks = measure_peaks()
    total = CLASSES * args.per_class
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = Path(folder) / "paper28.pt"
        random_checkpoint(checkpoint)
        loaded = {name: LoadedGenerator(checkpoint, "cpu", precision=name) for name in ("auto", "fp32")}
        flops = flops_per_glyph(loaded["auto"])
        labels = [c for c in range(CLASSES) for _ in range(args.per_class)]

        def store_window(precision: str) -> float:
            out = Path(folder) / "gen.h5"
            request = GenerateRequest(checkpoint, args.per_class, all_classes=True, batch_size=BATCH, device="cpu",
                                      precision=precision)
            start = time.perf_counter()
            count = generate_store(request, out)
            seconds = time.perf_counter() - start
            os.unlink(out)
            return count / seconds

        def generation_window(precision: str) -> float:
            start = time.perf_counter()
            count = sum(len(batch) for batch in loaded[precision].images(labels, 0, batch_size=BATCH))
            return count / (time.perf_counter() - start)

        for precision in loaded:  # warm-up
            generation_window(precision)
        rates = {(kind, precision): [] for kind in ("store", "generation") for precision in loaded}
        for _ in range(args.windows):
            for precision in loaded:
                rates["store", precision].append(store_window(precision))
                rates["generation", precision].append(generation_window(precision))
    peaks = measure_peaks(peaks)  # again at the end; the better of the two is the machine's
    results = {}
    for precision, generator in loaded.items():
        used = "bf16" if generator.dtype == torch.bfloat16 else "fp32"
        floor = peaks[used]["peak"] * 1e9 / flops
        entry = {"precision": used, "floor_glyphs_per_s": round(floor)}
        for kind in ("store", "generation"):
            median = statistics.median(rates[kind, precision])
            entry[kind] = {"glyphs_per_s": [round(r) for r in rates[kind, precision]], "median_glyphs_per_s": round(median),
                           "achieved_gflop_per_s": round(median * flops / 1e9, 1), "share_of_peak": round(median / floor, 3)}
        results[precision] = entry
    print(json.dumps({
        "benchmark": "paper28 generation at 3,740 classes, batch 1,024, into a glyph store (generate_store)",
        "date": date.today().isoformat(), "machine": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(), "torch": torch.__version__, "glyphs_per_window": total,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "mflop_per_glyph": round(flops / 1e6, 2), "peak_gflop_per_s": peaks,
        "results": results,
    }, indent=2))


if __name__ == "__main__":
    main()
