"""Experiment: the paper's recipe and each addition for many classes and few images, trained for the same CPU time,
scored by one judge (results: docs/results.md).

Each arm is `cond-lsgan train` of one config (default configs/glyphs-cpu.toml, whose Φ
starts from the glyphs: the base arm "glyphs") plus its overrides: "paper" turns that
off (the paper's recipe at the config's sizes), every other arm adds one option to the
base; "classifier" needs `--classifier`, a judge other than `--judge`. One thread each, `--parallel` arms at a time (one per core), stopped with
SIGTERM after `--minutes` (it saves a checkpoint and exits 143), then scored by
`cond-lsgan evaluate generator` with a judge that is in no arm's loss. Prints JSON and a
Markdown table: steps reached, readability, judge-FID, within-class diversity of judge
features and of pixels against real, collapsed classes, copies of training images.

    python benchmarks/ablation.py --data train.h5 --judge judge.pt --out DIR [--minutes 20]
        [--arms paper,glyphs,cbn,...] [--parallel 2] [--per-class 20] [--config configs/glyphs-cpu.toml]
        [--classifier loss_judge.pt]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CLASSIFIER = "{classifier}"  # stands for --classifier in an arm's overrides
ARMS = {
    "paper": ["model.label_init=random"],
    "glyphs": [],
    "projection": ["model.d_condition=projection"],
    "both": ["model.d_condition=both"],
    "cbn": ["model.g_norm=conditional"],
    "spectral_norm": ["model.d_spectral_norm=true"],
    "augment": ["train.augment=translation,cutout"],
    "mode_seeking": ["loss.mode_seeking=0.1"],
    "classifier": [f"loss.classifier={CLASSIFIER}"],
    "lr_x2": ["train.lr_g=4e-4", "train.lr_d=4e-4"],
    "batch32": ["train.batch_size=32"],
    "batch128": ["train.batch_size=128"],
    "batch128_lr_x2": ["train.batch_size=128", "train.lr_g=4e-4", "train.lr_d=4e-4"],
    "glyphs_seed1": ["train.seed=1"],  # the base arm again with another seed: the spread between runs
    "all": ["model.d_condition=both", "model.g_norm=conditional", "model.d_spectral_norm=true",
            "train.augment=translation,cutout", "loss.mode_seeking=1.0"],
}


def start(arm: str, args: argparse.Namespace) -> subprocess.Popen:
    run = args.out / arm
    command = [sys.executable, "-m", "cond_lsgan", "train", "--config", str(args.config), "--data", str(args.data),
               "--out", str(run), "--resume", "auto", "train.steps=10000000", "train.checkpoint_every=500",
               "train.sample_every=1000", *overrides(arm, args)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    run.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=open(run / "stderr.txt", "w"), env=env)


def overrides(arm: str, args: argparse.Namespace) -> list[str]:
    """The arm's config overrides, with --classifier filled in."""
    return [item.replace(CLASSIFIER, str(args.classifier)) for item in ARMS[arm]]


def score(arm: str, args: argparse.Namespace) -> dict:
    run = args.out / arm
    checkpoints = sorted((run / "checkpoints").glob("step_*.pt"))
    report = run / "report.json"
    command = [sys.executable, "-m", "cond_lsgan", "evaluate", "generator", "--checkpoint", str(checkpoints[-1]),
               "--judge", str(args.judge), "--data", str(args.real or args.data), "--out", str(report),
               "--per-class", str(args.per_class), "--device", "cpu"]
    subprocess.run(command, check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    data = json.loads(report.read_text())
    return {"arm": arm, "overrides": overrides(arm, args), "steps": data["step"], "readability": round(data["readability"], 4),
            "real_readability": round(data["real_readability"], 4), "judge_fid": round(data["judge_fid"], 3),
            "diversity_ratio": round(data["diversity"]["mean_ratio"], 3),
            "pixel_diversity_ratio": round(data["diversity"]["pixel_mean_ratio"], 3),
            "collapsed_share": round(data["diversity"]["collapsed_share"], 4),
            "copy_share": round(data["nearest_real"]["copy_share"], 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the arms' training store")
    parser.add_argument("--judge", type=Path, required=True, help="judge file (a judge in no arm's loss)")
    parser.add_argument("--real", type=Path, help="real store the report compares with (default: --data)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "glyphs-cpu.toml")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, from: {', '.join(ARMS)}")
    parser.add_argument("--minutes", type=float, default=20.0, help="training time of each arm")
    parser.add_argument("--parallel", type=int, default=2, help="arms trained at once (one thread each)")
    parser.add_argument("--classifier", type=Path, help="judge in the classifier arm's loss (not --judge)")
    parser.add_argument("--per-class", type=int, default=20, help="glyphs generated per class for the scores")
    args = parser.parse_args()
    arms = [arm.strip() for arm in args.arms.split(",")]
    unknown = [arm for arm in arms if arm not in ARMS]
    if unknown:
        parser.error(f"unknown arms {unknown}; choose from {list(ARMS)}")
    if "classifier" in arms and (args.classifier is None or args.classifier.resolve() == args.judge.resolve()):
        parser.error("the classifier arm needs --classifier, a judge other than --judge (a judge in a loss grades its own exam)")
    for first in range(0, len(arms), args.parallel):
        group = arms[first : first + args.parallel]
        processes = {arm: start(arm, args) for arm in group}
        time.sleep(args.minutes * 60)
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
        for arm, process in processes.items():
            if process.wait() not in (0, 143):
                raise SystemExit(f"{arm}: training failed; see {args.out / arm / 'stderr.txt'}")
    rows = [score(arm, args) for arm in arms]
    result = {"experiment": "ablation at equal CPU time", "date": date.today().isoformat(),
              "machine": platform.processor() or platform.machine(), "minutes_per_arm": args.minutes,
              "threads_per_arm": 1, "config": str(args.config), "data": str(args.data), "judge": str(args.judge), "rows": rows}
    print(json.dumps(result, indent=2))
    columns = ["arm", "steps", "readability", "judge_fid", "diversity_ratio", "pixel_diversity_ratio", "collapsed_share",
               "copy_share"]
    print("\n| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(str(row[c]) for c in columns) + " |")


if __name__ == "__main__":
    main()
