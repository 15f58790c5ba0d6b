"""Checkpoints are written atomically and loaded safely."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from cond_lsgan.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint, prune_checkpoints, save_checkpoint, checkpoint_path
from data_tools.errors import InputError
from helpers import REPO_ROOT


class Payload:
    """Stands for any pickled object: loading it would run code from the file."""


class Unpicklable:
    def __reduce__(self):
        raise RuntimeError("cannot serialise this")


def test_failed_save_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "checkpoints" / "step_0000001.pt"
    save_checkpoint({"step": 1, "weights": torch.arange(10.0)}, path)
    # The big tensor is written before the unpicklable object fails the save half-way.
    with pytest.raises(RuntimeError, match="cannot serialise"):
        save_checkpoint({"step": 2, "weights": torch.zeros(1_000_000), "bad": Unpicklable()}, path)
    state = load_checkpoint(path)
    assert state["step"] == 1 and torch.equal(state["weights"], torch.arange(10.0))
    assert os.listdir(path.parent) == [path.name]  # no temporary file left behind


@pytest.mark.slow  # kills writer processes
def test_killed_mid_save_leaves_a_loadable_checkpoint(tmp_path):
    """SIGKILL a process that keeps rewriting a 16 MB checkpoint, at random moments."""
    path = tmp_path / "step_0000001.pt"
    writer = (
        "import sys, torch\n"
        "from cond_lsgan.checkpoint import save_checkpoint\n"
        "step = 0\n"
        "while True:\n"
        "    step += 1\n"
        "    save_checkpoint({'step': step, 'weights': torch.full((4_000_000,), float(step))}, sys.argv[1])\n"
        "    print(step, flush=True)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    rng = random.Random(0)
    for attempt in range(3):
        process = subprocess.Popen([sys.executable, "-c", writer, str(path)], stdout=subprocess.PIPE, text=True, env=env)
        assert process.stdout.readline().strip().isdigit()  # at least one complete save
        time.sleep(rng.uniform(0.0, 0.3))
        process.send_signal(signal.SIGKILL)
        process.wait()
        state = load_checkpoint(path)
        assert state["weights"].shape == (4_000_000,)
        assert torch.all(state["weights"] == float(state["step"]))


def test_unsafe_and_damaged_files_are_refused(tmp_path):
    pickled = tmp_path / "evil.pt"
    torch.save({"format": "cond-lsgan-checkpoint", "payload": Payload()}, pickled)
    with pytest.raises(InputError, match="refused to load"):
        load_checkpoint(pickled)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(InputError, match="not a readable checkpoint"):
        load_checkpoint(garbage)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(InputError, match="not a cond-lsgan checkpoint"):
        load_checkpoint(other)
    newer = tmp_path / "newer.pt"
    save_checkpoint({"step": 1}, newer)
    state = torch.load(newer, weights_only=True)
    torch.save({**state, "version": 99}, newer)
    with pytest.raises(InputError, match="version 99 is newer"):
        load_checkpoint(newer)
    with pytest.raises(InputError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_listing_orders_by_step_and_prunes_oldest(tmp_path):
    for step in (10, 2, 300):
        save_checkpoint({"step": step}, checkpoint_path(tmp_path, step))
    (tmp_path / "checkpoints" / ".step_0000400.pt.abc.tmp").write_bytes(b"partial")
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_0000002.pt", "step_0000010.pt", "step_0000300.pt"]
    prune_checkpoints(tmp_path, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_0000010.pt", "step_0000300.pt"]
    assert latest_checkpoint(tmp_path).name == "step_0000300.pt"
    assert latest_checkpoint(tmp_path / "empty") is None
