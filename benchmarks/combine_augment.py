"""Combine `evaluate augment` reports of single seeds, run side by side, into one report over all the seeds.

On a machine with room for several classifiers at once (a GPU), one process per seed
finishes the experiment in a third of the time:

    for seed in 0 1 2; do cond-lsgan evaluate augment ... --seeds $seed --out aug_s$seed.json & done; wait
    python benchmarks/combine_augment.py aug_s0.json aug_s1.json aug_s2.json --out aug.json

The reports must come from the same stores, steps and share (checked). Accuracies and
gains are recomputed from the per-seed runs as `evaluate augment` computes them (mean,
sample sd, gains paired by seed over the best arm without generated glyphs); the
per-class accuracies are the mean of the reports' (each report is one seed). Prints the
same summary as `evaluate augment`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from cond_lsgan.evaluation.augment_experiment import compare_arms, per_class_view, summary_text  # noqa: E402
from cond_lsgan.evaluation.common import write_json  # noqa: E402

SAME = ("real", "generated", "test", "steps", "generated_share", "classes", "real_images", "generated_images", "test_images")


def combine(reports: list[dict]) -> dict:
    first = reports[0]
    for report in reports[1:]:
        differing = [key for key in SAME if report[key] != first[key]]
        if differing:
            raise SystemExit(f"combine_augment: the reports differ in {', '.join(differing)}")
    runs = [run for report in reports for run in report["runs"]]
    accuracy, baseline, gains, compared = compare_arms(runs, list(first["accuracy"]))
    per_arm = {arm: np.mean([report["per_class"]["accuracy"][arm] for report in reports], axis=0) for arm in accuracy}
    view = per_class_view((first["per_class"]["class_text"], per_arm), baseline, compared, listed=10)
    return {**{key: first[key] for key in SAME}, "seeds": [run["seed"] for run in runs], "accuracy": accuracy,
            "baseline": baseline, "gain_over_baseline": gains, "per_class": view, "runs": runs,
            "seconds": max(report["seconds"] for report in reports)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    combined = combine([json.loads(path.read_text(encoding="utf-8")) for path in args.reports])
    write_json(combined, args.out)
    print(summary_text(combined))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
