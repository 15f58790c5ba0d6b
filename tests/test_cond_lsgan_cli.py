"""The `cond-lsgan` CLI, run as a real subprocess: train -> resume -> sample -> generate, and bad input."""

from __future__ import annotations

import pytest
from PIL import Image

from data_tools.store import read_store
from helpers import REPO_ROOT, TINY_TRAIN, assert_one_line_error, run_cond_lsgan, write_tiny_store

pytestmark = pytest.mark.slow  # every test starts the CLI

MNIST_CONFIG = REPO_ROOT / "configs" / "mnist.toml"  # seed32


def test_train_resume_sample_generate(few_digits32, tmp_path):
    run = tmp_path / "run"
    first = run_cond_lsgan("train", "--config", MNIST_CONFIG, "--data", few_digits32, "--out", run, "train.steps=2", *TINY_TRAIN)
    assert first.returncode == 0, first.stderr
    assert "trained to step 2" in first.stdout
    assert "step 2: d_loss" in first.stderr  # plain log lines when stderr is not a terminal
    # Resume without --config: the run's saved config.json is reused, with the new step count.
    second = run_cond_lsgan("train", "--data", few_digits32, "--out", run, "--resume", "auto", "train.steps=4")
    assert second.returncode == 0, second.stderr
    assert "resuming from" in second.stderr and "at step 2 of 4" in second.stderr
    checkpoint = run / "checkpoints" / "step_0000004.pt"
    assert checkpoint.is_file()

    grid = run_cond_lsgan("sample", "--checkpoint", checkpoint, "--out", tmp_path / "grid.png", "--n", "9", "--device", "cpu")
    assert grid.returncode == 0, grid.stderr
    assert Image.open(tmp_path / "grid.png").size == (3 * 66 + 2, 3 * 66 + 2)

    generated = run_cond_lsgan("generate", "--checkpoint", checkpoint, "--n", "10", "--out", tmp_path / "gen.h5", "--device", "cpu")
    assert generated.returncode == 0, generated.stderr
    store = read_store(tmp_path / "gen.h5")
    assert len(store) == 10 and store.sources == ["generated:run"]
    assert store.images.std() > 0  # not a blank image set


@pytest.mark.parametrize("make_args, fragments", [
    (lambda d, t: ["train", "--config", MNIST_CONFIG, "--data", d, "--out", t / "r", "train.stpes=3"],
     ["unknown key train.stpes", "valid keys: train.steps"]),
    (lambda d, t: ["train", "--config", t / "nope.toml", "--data", d, "--out", t / "r"], ["config file not found"]),
    (lambda d, t: ["train", "--config", MNIST_CONFIG, "--data", t / "missing.h5", "--out", t / "r"], ["missing.h5: no such file"]),
    (lambda d, t: ["train", "--config", MNIST_CONFIG, "--data", REPO_ROOT / "pyproject.toml", "--out", t / "r"], ["not an HDF5 file"]),
    (lambda d, t: ["train", "--data", d, "--out", t / "r"], ["--config is required"]),
    (lambda d, t: ["sample", "--checkpoint", t / "none.pt", "--out", t / "g.png"], ["checkpoint not found"]),
    (lambda d, t: ["generate", "--checkpoint", d, "--n", "5", "--out", t / "g.h5"], ["not a readable checkpoint"]),
])
def test_bad_input_is_one_line_and_exit_2(few_digits32, tmp_path, make_args, fragments):
    assert_one_line_error(run_cond_lsgan(*make_args(few_digits32, tmp_path)), "cond-lsgan", *fragments)


def test_image_size_mismatch_is_reported(tmp_path):
    store = tmp_path / "small.h5"
    write_tiny_store(store, count=16, size=8)
    result = run_cond_lsgan("train", "--config", MNIST_CONFIG, "--data", store, "--out", tmp_path / "r", *TINY_TRAIN)
    assert_one_line_error(result, "cond-lsgan", "seed32 needs an image size that is a multiple of 16")
