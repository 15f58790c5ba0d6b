"""A resume or a failed run never costs the user a file: branches, moved-aside damage, logged prunes, the lock.

Each case was reproduced first (the run went ahead and replaced or left files), then
shown refused or logged. Runs are the tiny paper28 model, in-process through the CLI's
`main` where one process does, real subprocesses where two trainers must meet.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cond_lsgan.checkpoint import RUN_KEYS, checkpoint_path, list_checkpoints, load_checkpoint
from cond_lsgan.cli import main as cond_lsgan_main
from cond_lsgan.training.run_folder import LOCK_NAME, RunLock
from data_tools.errors import InputError
from data_tools.store import write_store
from data_tools.synthetic import synthetic_digits
from helpers import (DEMO, ENV, TINY_RUN, TINY_TRAIN, assert_mentions, assert_one_line_error, file_digests, live_trainer,
                     run_cond_lsgan, stop_trainer)
from test_run_safety import flip_tensor_bytes

EVERY_STEP = ["train.checkpoint_every=1", "train.sample_every=1", "train.keep_checkpoints=5"]


def cli(capsys, *args: object) -> tuple[int, str]:
    """`cond-lsgan ARGS` in this process: (exit code, stderr)."""
    capsys.readouterr()
    code = cond_lsgan_main([str(a) for a in args])
    return code, capsys.readouterr().err


def error_line(code: int, err: str) -> str:
    """The one `cond-lsgan: error:` line of a refused command (exit code 2, no traceback)."""
    assert code == 2 and "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("cond-lsgan: error: "), err
    return last


def train_args(data: Path, out: Path, *overrides: str, resume: str | Path | None = None, config: Path | None = DEMO) -> list:
    return ["train", *(["--config", config] if config else []), "--data", data, "--out", out,
            *(["--resume", resume] if resume else []), *([*TINY_RUN, *overrides] if config else overrides)]


@pytest.fixture
def three_steps(digits28, tmp_path, capsys) -> Path:
    """A run folder with checkpoints and grids of steps 1, 2 and 3."""
    run = tmp_path / "run"
    code, err = cli(capsys, *train_args(digits28, run, "train.steps=3", *EVERY_STEP))
    assert code == 0, err
    assert [p.name for p in list_checkpoints(run)] == ["step_0000001.pt", "step_0000002.pt", "step_0000003.pt"]
    return run


def test_resuming_an_older_checkpoint_in_place_is_refused_and_a_new_out_branches(digits28, tmp_path, capsys, three_steps):
    run, before = three_steps, file_digests(three_steps)
    old = checkpoint_path(run, 1)
    # The failure was: exit 0, steps 2 and 3 silently replaced by the new branch.
    line = error_line(*cli(capsys, *train_args(digits28, run, "train.lr_g=1e-3", resume=old, config=None)))
    assert line.startswith(f"cond-lsgan: error: {run} "), line
    assert_mentions(line, f"newer than {old}", "step_0000002.pt, step_0000003.pt", "write over them", "new --out", "--resume auto")
    assert file_digests(run) == before
    # A branch in a new folder, its config taken from the checkpoint (no --config): the original is left byte for byte.
    branch = tmp_path / "branch"
    code, err = cli(capsys, *train_args(digits28, branch, "train.lr_g=1e-3", resume=old, config=None))
    assert code == 0, err
    assert f"branching from {old} at step 1: a new run in {branch}; {run} is not written" in err
    assert f"resuming from {old} at step 1 of 3" in err
    assert [p.name for p in list_checkpoints(branch)] == ["step_0000002.pt", "step_0000003.pt"]
    assert load_checkpoint(checkpoint_path(branch, 3), require=RUN_KEYS)["config"]["train"]["lr_g"] == 1e-3
    assert file_digests(run) == before
    # Continuing a folder from another folder's checkpoint would mix two runs in one: refused too.
    line = error_line(*cli(capsys, *train_args(digits28, branch, resume=checkpoint_path(run, 3), config=None)))
    assert f"{branch} already holds checkpoints (the newest step_0000003.pt) and {checkpoint_path(run, 3)} is not one of them" in line
    assert file_digests(run) == before


def test_a_damaged_checkpoint_the_run_reaches_again_is_moved_aside_and_every_overwrite_and_prune_is_logged(
        digits28, capsys, three_steps):
    run = three_steps
    damaged = checkpoint_path(run, 3)
    flip_tensor_bytes(damaged, 3000)
    damaged_sha, grid_3 = hashlib.sha256(damaged.read_bytes()).hexdigest(), run / "samples" / "step_0000003.png"
    code, err = cli(capsys, *train_args(digits28, run, "train.keep_checkpoints=2", resume="auto", config=None))
    assert code == 0, err
    log = (run / "log.txt").read_text()
    aside = damaged.with_name("step_0000003.pt.damaged")
    assert f"skipped {damaged}: damaged checkpoint" in log
    assert f"moved damaged {damaged} aside to {aside}: this run trains past step 3 again (from step 2 to 3)" in log
    assert f"writing over {grid_3}: a grid of step 3 from before this run resumed at step 2" in log
    assert f"pruned {checkpoint_path(run, 1)} (train.keep_checkpoints=2)" in log
    assert hashlib.sha256(aside.read_bytes()).hexdigest() == damaged_sha  # the damaged file kept as it was
    assert [p.name for p in list_checkpoints(run)] == ["step_0000002.pt", "step_0000003.pt"]
    assert load_checkpoint(damaged, require=RUN_KEYS)["step"] == 3  # written again, intact


def test_a_config_file_inside_the_run_folder_is_not_written_over(digits28, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    config = run / "config.json"
    shutil.copy(DEMO, config)  # the user's TOML under the name the run writes its config as
    before = hashlib.sha256(config.read_bytes()).hexdigest()
    line = error_line(*cli(capsys, *train_args(digits28, run, "train.steps=1", config=config)))
    assert f"--out {run} writes {config}, which is the input --config {config}" in line
    assert hashlib.sha256(config.read_bytes()).hexdigest() == before and os.listdir(run) == ["config.json"]


def test_a_failed_train_removes_the_folder_it_made_and_nothing_else(digits28, tmp_path, capsys):
    lr = ["train.steps=2", "train.lr_g=1e308", "train.lr_d=1e308", "train.max_bad_steps=1000"]  # found bad after the files are made
    new = tmp_path / "new" / "deeper" / "run"
    line = error_line(*cli(capsys, *train_args(digits28, new, *lr)))
    assert "no step of this run completed" in line
    assert not (tmp_path / "new").exists()  # the run folder and the parents it made
    # A folder that was there before keeps what it holds: the user's file, and the run's log of the failed steps.
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine")
    error_line(*cli(capsys, *train_args(digits28, existing, *lr)))
    assert (existing / "notes.txt").read_text() == "mine" and "update skipped" in (existing / "log.txt").read_text()


@pytest.mark.parametrize("written, removed", [
    ({"config.json": "{}", "log.txt": "", "samples/step_0000001.png": "png", "tensorboard/events.out.tfevents.1.h.2.0": ""}, True),
    ({"config.json": "{}", "checkpoints/step_0000001.pt": "a checkpoint"}, False),
    ({"log.txt": "", "samples/notes.txt": "someone else's"}, False),
], ids=["own-files", "a-checkpoint", "a-foreign-file"])
def test_a_failed_start_removes_only_a_folder_of_its_own_files(tmp_path, written, removed):
    run = tmp_path / "made" / "run"
    with pytest.raises(RuntimeError), RunLock(run):
        for name, text in written.items():
            (run / name).parent.mkdir(exist_ok=True)
            (run / name).write_text(text)
        raise RuntimeError("the run failed")
    assert (tmp_path / "made").exists() != removed
    if not removed:
        assert {name: (run / name).read_text() for name in written} == written


def test_a_batch_of_one_trains_where_the_model_allows_it_and_is_one_line_where_not(tmp_path, capsys):
    for size in (28, 32):
        write_store(tmp_path / f"one{size}.h5", synthetic_digits(1, size=size, seed=1))
    for extra in ([], ["train.memory_check=false"]):
        line = error_line(*cli(capsys, *train_args(tmp_path / "one28.h5", tmp_path / "p", "train.steps=1", "train.batch_size=1",
                                                  *extra)))
        assert_mentions(line, "train.batch_size=1 is too small", "model.arch=paper28", "BatchNorm", "train.batch_size=2 or more")
        assert not (tmp_path / "p").exists()
    seed32 = [*TINY_TRAIN, "model.arch=seed32", "train.grid_size=2", "train.steps=2", "train.batch_size=1"]
    code, err = cli(capsys, "train", "--config", DEMO, "--data", tmp_path / "one32.h5", "--out", tmp_path / "s", *seed32)
    assert code == 0 and "done at step 2" in err, err
    assert load_checkpoint(checkpoint_path(tmp_path / "s", 2), require=RUN_KEYS)["step"] == 2


def test_the_lock_holds_when_its_file_is_replaced(tmp_path):
    run = tmp_path / "run"
    with RunLock(run):
        other = tmp_path / "other"
        other.write_text("not a lock")
        os.replace(other, run / LOCK_NAME)  # a new inode at .lock
        with pytest.raises(InputError, match=rf"{run} is in use by another training run \(pid {os.getpid()}\b"):
            RunLock(run).__enter__()
    assert (run / LOCK_NAME).read_text() == "not a lock"  # the other program's file, not ours to empty
    with RunLock(run) as lock:  # released: taken again, with a note on what was at .lock
        assert lock.notes == [f"{run / LOCK_NAME} held no run record ('not a lock'); replaced it with this run's"]


@pytest.mark.slow  # two training processes
def test_two_trainers_meet_with_the_lock_file_replaced_the_second_is_refused(digits28, tmp_path):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "cond_lsgan", "train", "--config", DEMO, "--data", digits28, "--out", run, "--resume", "auto",
               *TINY_RUN, "train.steps=100000", "train.checkpoint_every=50"]
    with live_trainer(command, "step 3: d_loss", ENV) as first:
        lock = run / LOCK_NAME
        report = run_cond_lsgan("report", run, "--out", lock)  # our own commands refuse to write it
        assert_one_line_error(report, "cond-lsgan", f"--out {lock} would write into the run folder", "its .lock")
        (tmp_path / "other").write_text("someone else's file")  # another program replaces it
        os.replace(tmp_path / "other", lock)
        config = hashlib.sha256((run / "config.json").read_bytes()).hexdigest()
        second = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=90)
        assert_one_line_error(second, "cond-lsgan", f"{run} is in use by another training run (pid {first.pid}")
        assert hashlib.sha256((run / "config.json").read_bytes()).hexdigest() == config
        rest = stop_trainer(first)
        assert "continue with --resume auto" in rest.strip().splitlines()[-1]
    steps = [int(line.split('"step": ')[1].split(",")[0]) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, len(steps) + 1))  # every step once, in order: one writer
    assert load_checkpoint(list_checkpoints(run)[-1], require=RUN_KEYS)["step"] == steps[-1]
