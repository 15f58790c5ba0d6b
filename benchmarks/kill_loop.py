"""Robustness check: kill -9 a training run at random moments, resume each time, compare with an uninterrupted run.

Trains the tiny paper28 model of the tests (configs/demo.toml, 1/8 width) on a synthetic
digit store with a checkpoint every step (so many kills land inside a checkpoint write),
sends SIGKILL `--kills` times at seeded random moments after training has started,
restarts with `--resume auto` each time, lets the last run finish, and compares every
weight of the final checkpoint with an uninterrupted run of the same config. Prints JSON:
the step each kill left, leftover temporary files seen before each restart, and whether
the weights are equal.

    python benchmarks/kill_loop.py [--kills 20] [--steps 400] [--seed 0] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cond_lsgan.checkpoint import RUN_KEYS, latest_checkpoint, load_checkpoint  # noqa: E402
from data_tools.store import write_store  # noqa: E402
from data_tools.synthetic import synthetic_digits  # noqa: E402

TINY = ["model.arch=paper28", "model.conditional=true", "model.z_dim=16", "model.embed_dim=8", "model.width=0.125",
        "train.order=d_then_g", "train.device=cpu", "train.batch_size=8", "train.precision=fp32", "train.grid_size=4",
        "train.log_every=1", "train.sample_every=100000", "train.keep_checkpoints=2"]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def command(data: Path, out: Path, steps: int, every: int) -> list[str]:
    return [sys.executable, "-m", "cond_lsgan", "train", "--config", str(REPO / "configs" / "demo.toml"), "--data", str(data),
            "--out", str(out), "--resume", "auto", *TINY, f"train.steps={steps}", f"train.checkpoint_every={every}"]


def final_weights(run: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(latest_checkpoint(run), require=RUN_KEYS)
    return {f"{part}.{k}": v for part in ("generator", "generator_ema", "discriminator") for k, v in state[part].items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="work folder (default: a temporary one)")
    args = parser.parse_args()
    work = args.out or Path(tempfile.mkdtemp(prefix="kill_loop_"))
    data = work / "digits28.h5"
    write_store(data, synthetic_digits(64, size=28, seed=1))
    rng = random.Random(args.seed)
    run = work / "killed"
    kills = []
    for _ in range(args.kills):
        leftovers = [p.name for p in (run / "checkpoints").glob(".*.tmp")] if run.exists() else []
        process = subprocess.Popen(command(data, run, args.steps, 1), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   text=True, env=ENV)
        for line in process.stderr:
            if re.match(r"step \d+: d_loss", line):
                break
        time.sleep(rng.uniform(0.0, 0.5))
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stderr.close()
        newest = latest_checkpoint(run)
        kills.append({"left_at_step": load_checkpoint(newest)["step"] if newest else 0, "leftover_tmp_before_start": leftovers})
    final = subprocess.run(command(data, run, args.steps, 1), capture_output=True, text=True, env=ENV)
    whole = subprocess.run(command(data, work / "whole", args.steps, args.steps), capture_output=True, text=True, env=ENV)
    ours, reference = final_weights(run), final_weights(work / "whole")
    equal = ours.keys() == reference.keys() and all(torch.equal(ours[k], reference[k]) for k in ours)
    print(json.dumps({"kills": len(kills), "steps": args.steps, "each_kill": kills,
                      "final_exit_codes": [final.returncode, whole.returncode],
                      "final_log_notes": [line for line in final.stderr.splitlines() if "removed" in line or "took over" in line],
                      "leftover_tmp_after": [p.name for p in (run / "checkpoints").glob(".*.tmp")],
                      "weights_equal_to_uninterrupted": equal}, indent=2))


if __name__ == "__main__":
    main()
