"""A user's run is never lost or corrupted: checkpoint digests, one writer per run folder, runs that never updated.

Each failure is reproduced first where it can be (torch loads a bit-flipped archive
without a word), then shown caught.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from cond_lsgan.checkpoint import (RUN_KEYS, DamagedCheckpoint, checkpoint_path, content_digest, list_checkpoints,
                                   load_checkpoint, prune_checkpoints, save_checkpoint)
from cond_lsgan.cli import main as cond_lsgan_main
from cond_lsgan.training.run_folder import LOCK_NAME, RunLock
from data_tools.errors import InputError
from helpers import DEMO, ENV, TINY_RUN, assert_mentions, live_trainer, stop_trainer


def flip_tensor_bytes(path: Path, count: int, seed: int = 0) -> None:
    """Flip `count` bytes inside the largest tensor record of a torch zip archive, its structure left intact."""
    with zipfile.ZipFile(path) as archive:
        record = max((info for info in archive.infolist() if "/data/" in info.filename), key=lambda info: info.file_size)
    with open(path, "r+b") as handle:
        handle.seek(record.header_offset + 26)  # the local header's name and extra lengths
        name_length, extra_length = int.from_bytes(handle.read(2), "little"), int.from_bytes(handle.read(2), "little")
        start = record.header_offset + 30 + name_length + extra_length
        rng = random.Random(seed)
        for offset in rng.sample(range(record.file_size), min(count, record.file_size)):
            handle.seek(start + offset)
            byte = handle.read(1)[0]
            handle.seek(start + offset)
            handle.write(bytes([byte ^ 0xFF]))


def weights(path: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(path, require=RUN_KEYS)
    return {f"{part}.{key}": value for part in ("generator", "generator_ema", "discriminator") for key, value in state[part].items()}


def test_a_bit_flipped_checkpoint_loads_in_torch_but_not_here(tmp_path):
    path = tmp_path / "step_0000001.pt"
    save_checkpoint({"step": 1, "weights": torch.linspace(-1, 1, 100_000), "small": torch.ones(3)}, path)
    assert load_checkpoint(path)["step"] == 1
    flip_tensor_bytes(path, 2000)
    # The failure: the archive is still a valid zip and torch loads it, the weights silently changed.
    assert zipfile.is_zipfile(path)
    changed = torch.load(path, weights_only=True)
    assert not torch.equal(changed["weights"], torch.linspace(-1, 1, 100_000))
    with pytest.raises(DamagedCheckpoint, match=r"damaged checkpoint \(its content differs from what was written"):
        load_checkpoint(path)


def test_the_digest_covers_values_keys_types_and_shapes():
    """Against the reference: any change of a value, a key, a dtype or a shape changes the digest; the same content does not."""
    base = {"step": 3, "config": {"lr": 2e-4, "betas": (0.5, 0.999)}, "w": torch.arange(6.0).reshape(2, 3)}
    variants = [
        {**base, "step": 4},
        {**base, "config": {"lr": 2.0000000001e-4, "betas": (0.5, 0.999)}},
        {**base, "config": {"lr": 2e-4, "betas": [0.5, 0.999]}},
        {**base, "w": torch.arange(6.0).reshape(3, 2)},
        {**base, "w": torch.arange(6.0, dtype=torch.float64).reshape(2, 3)},
        {**base, "w": torch.arange(6.0).reshape(2, 3).clone().index_put_((torch.tensor([1]), torch.tensor([2])), torch.tensor(5.5))},
        {"step": 3, "config2": base["config"], "w": base["w"]},
    ]
    digest = content_digest(base)
    assert content_digest({**base, "w": base["w"].t().contiguous().t(), "digest": "ignored"}) == digest  # same values, other layout
    assert len({digest, *(content_digest(v) for v in variants)}) == len(variants) + 1


def test_resume_auto_falls_back_past_a_damaged_checkpoint_and_matches_an_uninterrupted_run(tiny_run, tmp_path):
    whole = tiny_run("train.steps=5", out=tmp_path / "whole")
    run = tmp_path / "run"
    tiny_run("train.steps=3", "train.checkpoint_every=1", "train.keep_checkpoints=3", out=run)
    damaged = checkpoint_path(run, 3)
    flip_tensor_bytes(damaged, 3000)
    result = tiny_run("train.steps=5", "train.checkpoint_every=1", "train.keep_checkpoints=3", out=run, resume="auto")
    log = (run / "log.txt").read_text()
    assert f"skipped {damaged}: damaged checkpoint (its content differs from what was written" in log
    assert f"resuming from {checkpoint_path(run, 2)} at step 2 of 5" in log
    assert result.step == 5
    ours, reference = weights(result.checkpoint), weights(whole.checkpoint)
    assert ours.keys() == reference.keys() and all(torch.equal(ours[k], reference[k]) for k in ours)


def test_resume_auto_with_no_intact_checkpoint_refuses_and_keeps_the_files(tiny_run, tmp_path):
    run = tmp_path / "run"
    tiny_run("train.steps=2", "train.checkpoint_every=1", "train.keep_checkpoints=2", out=run)
    for step in (1, 2):
        flip_tensor_bytes(checkpoint_path(run, step), 500)
    before = {p: p.read_bytes() for p in list_checkpoints(run)}
    with pytest.raises(InputError) as refused:
        tiny_run("train.steps=4", out=run, resume="auto")
    assert_mentions(str(refused.value), "no intact checkpoint", str(run / "checkpoints"), "2 damaged", str(checkpoint_path(run, 2)))
    assert {p: p.read_bytes() for p in list_checkpoints(run)} == before


def test_pruning_never_deletes_the_checkpoint_just_written(tmp_path):
    """A damaged newer checkpoint (kept after a fall-back) must not count the good one out."""
    for step in (100, 200, 300):
        save_checkpoint({"step": step}, checkpoint_path(tmp_path, step))
    prune_checkpoints(tmp_path, keep=1, intact=checkpoint_path(tmp_path, 200))
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_0000200.pt", "step_0000300.pt"]


def test_generate_and_evaluate_on_a_damaged_checkpoint_are_one_line(tiny_run, tmp_path, capsys):
    result = tiny_run("train.steps=1")
    flip_tensor_bytes(result.checkpoint, 200)
    capsys.readouterr()
    code = cond_lsgan_main(["generate", "--checkpoint", str(result.checkpoint), "--out", str(tmp_path / "g.h5"), "--all",
                            "--per-class", "1"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "damaged checkpoint (its content differs" in err, err
    assert not (tmp_path / "g.h5").exists()


def test_a_folder_where_a_checkpoint_is_expected_is_named_as_such(tmp_path):
    folder = checkpoint_path(tmp_path, 400)
    folder.mkdir(parents=True)
    with pytest.raises(InputError, match=r"step_0000400\.pt is a folder, not a checkpoint file"):
        load_checkpoint(folder)
    assert list_checkpoints(tmp_path) == []  # nor is it taken for one, or pruned


def test_a_second_writer_of_a_run_folder_is_refused_and_names_the_holder(tmp_path):
    with RunLock(tmp_path / "run") as held:
        assert not held.notes
        with pytest.raises(InputError, match=rf"in use by another training run \(pid {os.getpid()} on .*, started ") as refused:
            RunLock(tmp_path / "run").__enter__()
        assert_mentions(str(refused.value), str(tmp_path / "run"), "--out")
    with RunLock(tmp_path / "run") as again:  # released on exit: the next run takes it without a note
        assert not again.notes


@pytest.mark.slow  # kill -9 of a process holding the lock
def test_the_lock_of_a_killed_run_is_taken_over_and_its_leftovers_removed(tmp_path):
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom cond_lsgan.training.run_folder import RunLock\n"
                               "RunLock(sys.argv[1]).__enter__()\nprint('held', flush=True)\ntime.sleep(60)", str(run)],
                              stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(InputError, match=rf"in use by another training run \(pid {holder.pid} "):
            RunLock(run).__enter__()
        leftover = checkpoint_path(run, 7).parent / ".step_0000007.pt.k2j_x9ab.tmp"
        leftover.parent.mkdir(parents=True)
        leftover.write_bytes(b"x" * 1000)
        theirs = run / "notes.tmp"  # not our pattern: never touched
        theirs.write_text("keep")
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    with RunLock(run) as lock:
        assert lock.notes[0].startswith(f"took over {run / LOCK_NAME} from a run that ended without releasing it (pid {holder.pid} ")
        assert lock.notes[1] == "removed 1 temporary file (0.0 MB) left by an interrupted write"
    assert not leftover.exists() and theirs.read_text() == "keep"


@pytest.mark.slow  # two training processes
def test_two_runs_on_one_folder_the_second_is_refused_and_the_first_files_are_intact(digits28, tmp_path):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "cond_lsgan", "train", "--config", DEMO, "--data", digits28, "--out", run, "--resume", "auto",
               *TINY_RUN, "train.steps=100000", "train.checkpoint_every=5"]
    with live_trainer(command, "step 6: d_loss", ENV) as first:
        second = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=120)
        assert second.returncode == 2, second.stderr
        assert second.stderr.count("\n") == 1 and f"is in use by another training run (pid {first.pid} " in second.stderr
        stop_trainer(first)
    steps = [int(line.split('"step": ')[1].split(",")[0]) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, len(steps) + 1))  # every step once, in order: one writer
    assert load_checkpoint(list_checkpoints(run)[-1], require=RUN_KEYS)["step"] == steps[-1]


@pytest.mark.parametrize("overrides", [
    ["loss.a=9223372036854775807"],
    ["train.lr_g=1e308", "train.lr_d=1e308", "train.max_bad_steps=1000"],
], ids=["huge-label", "huge-lr"])
def test_a_run_that_never_applied_an_update_exits_non_zero(digits28, tmp_path, capsys, overrides):
    code = cond_lsgan_main(["train", "--config", str(DEMO), "--data", str(digits28), "--out", str(tmp_path / "run"), *TINY_RUN,
                            "train.steps=2", *overrides])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("cond-lsgan: error: "), err
    assert_mentions(last, "no step of this run completed", "(steps 1 to 2)", "no checkpoint was written", "train.lr_g")
    assert "trained to step" not in err


def test_weights_thrown_to_overflow_are_not_checkpointed(tiny_run, tmp_path):
    """lr 1e30, G before D: both losses of step 3 are finite (computed before the updates), the weights after it overflow D."""
    run, order = tmp_path / "run", "train.order=g_then_d"
    good = tiny_run(order, "train.steps=2", "train.checkpoint_every=1", out=run)
    with pytest.raises(InputError) as raised:
        tiny_run(order, "train.steps=6", "train.checkpoint_every=1", "train.lr_g=1e30", "train.lr_d=1e30", "train.max_bad_steps=100",
                 out=run, resume="auto")
    message = str(raised.value)
    assert message.startswith("step 3: ") and "\n" not in message, message
    assert_mentions(message, "weights are not usable", "not finite", "not saved", f"checkpoint is {good.checkpoint}", "train.lr_g")
    assert list_checkpoints(run)[-1] == good.checkpoint
    for path in list_checkpoints(run):
        assert all(torch.isfinite(t).all() and t.abs().max() < 1e6 for t in weights(path).values() if t.is_floating_point())
