"""Faults, for real: SIGTERM/SIGINT and kill -9 sent to training processes, non-finite losses, damaged checkpoints."""

from __future__ import annotations

import copy
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from cond_lsgan.checkpoint import RUN_KEYS, checkpoint_path, latest_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint
from cond_lsgan.training.step import TrainingStep
from cond_lsgan.training.loop import train
from data_tools.errors import InputError
from helpers import DEMO, ENV, TINY_RUN, assert_mentions, run_cond_lsgan, tiny_config


def train_command(data: Path, out: Path, *overrides: str) -> list:
    """`python -m cond_lsgan train` of the tiny model with --resume auto (a fresh folder simply starts)."""
    return [sys.executable, "-m", "cond_lsgan", "train", "--config", DEMO, "--data", data, "--out", out, "--resume", "auto",
            *TINY_RUN, *overrides]


@pytest.fixture
def start_training():
    """Start the training command in its own process (stderr, the log lines, readable as it runs).

    A hang fails the test instead of stalling it: a timer kills the process after 60 s.
    At the end of the test the timers are cancelled and any process still running is
    killed, so no thread or process outlives the test.
    """
    started: list[tuple[subprocess.Popen, threading.Timer]] = []

    def start(data: Path, out: Path, *overrides: str) -> subprocess.Popen:
        process = subprocess.Popen(train_command(data, out, *overrides), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True, env=ENV)
        timer = threading.Timer(60, process.kill)
        timer.start()
        started.append((process, timer))
        return process

    yield start
    for process, timer in started:
        timer.cancel()
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stderr.close()


def read_until(process: subprocess.Popen, pattern: str) -> str:
    """Read log lines until one matches; the line."""
    for line in process.stderr:
        if re.match(pattern, line):
            return line
    raise AssertionError(f"the process ended (code {process.wait()}) before a line matching {pattern!r}")


@pytest.mark.slow  # signals to a training process
@pytest.mark.parametrize("number, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_at_a_step_boundary_with_a_checkpoint(digits28, tmp_path, number, code, start_training):
    run = tmp_path / "run"
    process = start_training(digits28, run, "train.steps=100000", "train.checkpoint_every=100000")
    read_until(process, r"step 3: d_loss")
    process.send_signal(number)
    rest = process.stderr.read()
    assert process.wait() == code, rest
    last = rest.strip().splitlines()[-1]
    found = re.fullmatch(rf"stopped by {number.name} at step (\d+) of 100000; checkpoint (\S+); continue with --resume auto", last)
    assert found, rest
    step = int(found.group(1))
    assert step >= 3 and Path(found.group(2)) == checkpoint_path(run, step)
    assert list_checkpoints(run) == [checkpoint_path(run, step)]  # the signal's checkpoint, the only one
    assert load_checkpoint(checkpoint_path(run, step), require=RUN_KEYS)["step"] == step
    if number == signal.SIGINT:
        return
    # The run folder's own config (train.steps=100000) with a new end: it continues from the stop.
    resumed = run_cond_lsgan("train", "--data", digits28, "--out", run, "--resume", "auto", f"train.steps={step + 2}")
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from {checkpoint_path(run, step)} at step {step}" in resumed.stderr
    assert load_checkpoint(latest_checkpoint(run), require=RUN_KEYS)["step"] == step + 2


@pytest.mark.slow  # kill -9 of training processes
def test_kill_9_at_random_moments_then_resume_auto_reaches_the_end(digits28, tmp_path, start_training):
    """SIGKILL 3 times at seeded random moments (checkpoints every step, so some land mid-save); each resume loads."""
    run, steps = tmp_path / "run", 150
    overrides = (f"train.steps={steps}", "train.checkpoint_every=1", "train.keep_checkpoints=2")
    rng = random.Random(0)
    newest = 0
    for _ in range(3):
        process = start_training(digits28, run, *overrides)
        read_until(process, r"step \d+: d_loss")  # training runs
        time.sleep(rng.uniform(0.0, 0.3))
        process.send_signal(signal.SIGKILL)
        assert process.wait() == -signal.SIGKILL
        state = load_checkpoint(latest_checkpoint(run), require=RUN_KEYS)
        assert newest <= state["step"] < steps  # no step lost, and not finished
        newest = state["step"]
    process = start_training(digits28, run, *overrides)
    assert read_until(process, r"resuming from").startswith(f"resuming from {checkpoint_path(run, newest)} at step {newest}")
    rest = process.stderr.read()
    assert process.wait() == 0, rest
    assert load_checkpoint(latest_checkpoint(run), require=RUN_KEYS)["step"] == steps


@pytest.mark.slow  # training processes
def test_non_finite_losses_skip_their_updates_then_stop_the_run(digits28, tmp_path):
    """2 good steps, then lr 1e38: D's update throws its weights to ~1e38 and the next losses overflow to inf and NaN."""
    run = tmp_path / "run"
    good = subprocess.run(train_command(digits28, run, "train.steps=2", "train.checkpoint_every=1", "train.keep_checkpoints=5"),
                          capture_output=True, text=True, env=ENV)
    assert good.returncode == 0, good.stderr
    kept = checkpoint_path(run, 2)
    before = kept.read_bytes()
    # (the resumed run takes the new lr: the checkpoint's optimiser state does not bring back the old one)
    result = subprocess.run(train_command(digits28, run, "train.steps=50", "train.lr_g=1e38", "train.lr_d=1e38", "train.max_bad_steps=3",
                                          "train.checkpoint_every=1", "train.keep_checkpoints=5"),
                            capture_output=True, text=True, env=ENV)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert re.fullmatch(r"step 3: non-finite g_loss (nan|inf); update skipped \(1 in a row, train.max_bad_steps=3\)", lines[1])
    assert lines[2] == "step 3: no good step to average"
    assert re.fullmatch(r"step 5: non-finite d_loss nan, g_loss nan; update skipped \(3 in a row, train.max_bad_steps=3\)", lines[-2])
    assert lines[-1].startswith("cond-lsgan: error: "), lines[-1]
    assert_mentions(lines[-1], "3 steps in a row had non-finite losses", "(steps 3 to 5", "d_loss nan, g_loss nan",
                    "without saving them", f"checkpoint is {kept}", "train.lr_g")
    # No checkpoint of the bad steps; the good one is intact, loads, and the run continues from it with sane settings.
    assert list_checkpoints(run) == [checkpoint_path(run, 1), kept] and kept.read_bytes() == before
    state = load_checkpoint(kept, require=RUN_KEYS)
    assert all(torch.isfinite(t).all() for key in ("generator", "discriminator") for t in state[key].values() if t.is_floating_point())
    again = subprocess.run(train_command(digits28, run, "train.steps=4", "train.lr_g=2e-4", "train.lr_d=2e-4"),
                           capture_output=True, text=True, env=ENV)
    assert again.returncode == 0 and f"resuming from {kept} at step 2" in again.stderr, again.stderr


def test_a_bad_step_leaves_weights_ema_statistics_and_optimisers_as_they_were():
    trainer = TrainingStep(tiny_config(), 10, 28, torch.device("cpu"))
    pixels, labels = torch.randint(0, 256, (8, 28, 28), dtype=torch.uint8), torch.arange(8)
    trainer.step(pixels, labels, 0)
    with torch.no_grad():
        trainer.discriminator.conv1.weight[0, 0, 0, 0] = float("nan")  # NaN in every score: both losses NaN
    before = copy.deepcopy({k: v for k, v in trainer.state_dict().items() if k != "rng"})
    losses = trainer.step(pixels, labels, 1)
    assert set(trainer.skipped) == {"d_loss", "g_loss"} and not torch.isfinite(losses).any()
    after = {k: v for k, v in trainer.state_dict().items() if k != "rng"}
    for key in ("generator", "generator_ema", "discriminator"):
        for name, tensor in before[key].items():
            torch.testing.assert_close(after[key][name], tensor, rtol=0, atol=0, equal_nan=True, msg=f"{key}.{name}")
    assert torch.equal(before["discriminator"]["conv2_bn.running_mean"], after["discriminator"]["conv2_bn.running_mean"])
    for key in ("optimizer_g", "optimizer_d"):
        for index, moments in before[key]["state"].items():
            for name, value in moments.items():
                assert torch.equal(value, after[key]["state"][index][name]), f"{key} {index} {name}"
    with torch.no_grad():
        trainer.discriminator.conv1.weight[0, 0, 0, 0] = 0.0
    trainer.step(pixels, labels, 2)
    assert trainer.skipped == {}
    assert not torch.equal(before["generator_ema"]["up2.weight"], trainer.generator_ema.state_dict()["up2.weight"])


@pytest.fixture(scope="module")
def checkpoint(tiny_run):
    """A real one-step run's checkpoint."""
    return tiny_run("train.steps=1").checkpoint


def resume_from(data: Path, out: Path, state: dict, *overrides: str) -> str:
    """Resume a run from `state` (saved as a checkpoint); the InputError's message, which must be one line."""
    path = out / "edited.pt"
    save_checkpoint({k: v for k, v in state.items() if k not in ("format", "version")}, path)
    with pytest.raises(InputError) as error:
        train(tiny_config("train.steps=3", *overrides), data, out / "run", resume=str(path))
    assert "\n" not in str(error.value)
    return str(error.value)


def test_resuming_from_a_checkpoint_without_a_key_names_it(digits28, checkpoint, tmp_path):
    state = torch.load(checkpoint, weights_only=True)
    del state["optimizer_d"]
    message = resume_from(digits28, tmp_path, state)
    assert message.startswith(f"{tmp_path / 'edited.pt'}: "), message
    assert_mentions(message, "damaged checkpoint", "optimizer_d")


def test_weights_or_moments_of_other_shapes_are_one_line_errors(digits28, checkpoint, tmp_path):
    state = torch.load(checkpoint, weights_only=True)
    state["generator"]["project.weight"] = state["generator"]["project.weight"][:, :-1]
    message = resume_from(digits28, tmp_path, state)
    assert message.startswith(f"{tmp_path / 'edited.pt'}: "), message
    assert_mentions(message, "generator weights do not fit", "project.weight")
    state = torch.load(checkpoint, weights_only=True)
    state["optimizer_g"]["state"][0]["exp_avg"] = torch.zeros(3)
    message = resume_from(digits28, tmp_path, state)
    assert message.startswith(f"{tmp_path / 'edited.pt'}: "), message
    assert_mentions(message, "optimizer_g does not fit", "exp_avg", "(3,)")


def test_another_architecture_names_only_the_fields_that_differ(digits28, checkpoint, tmp_path):
    state = torch.load(checkpoint, weights_only=True)
    message = resume_from(digits28, tmp_path, state, "model.width=0.25", "model.z_dim=32")
    assert message.startswith(f"{tmp_path / 'edited.pt'} ") and "model settings" in message, message
    assert_mentions(message, "model.z_dim 16 in the checkpoint, 32 in the config", "model.width 0.125 in the checkpoint, 0.25 in the config")
    assert set(re.findall(r"model\.\w+", message)) == {"model.z_dim", "model.width"}  # those two fields, no other
