"""Sizes checked where they are read: a store's image size, the memory a run needs, the
device and the architecture. Each bad one is one `PROG: error:` line and exit code 2,
before anything large is allocated; never an allocator or RuntimeError traceback.

The CLIs run in this process (their `main` returns the exit code), with the memory the
check sees set to this machine's 24 GiB where the verdict depends on it, so the results
do not depend on the machine the tests run on.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
import torch

import cond_lsgan.memory as memory
from cond_lsgan import process
from cond_lsgan.cli import main as cond_lsgan_main
from cond_lsgan.config import Config, load_config
from cond_lsgan.models import build_models
from cond_lsgan.runtime import resolve_device
from data_tools.cli import main as data_tools_main
from data_tools.errors import InputError
from data_tools.store import ClassTable, GlyphSet, StoreWriter
from helpers import REPO_ROOT, TINY_RUN, assert_one_line_error

CONFIGS = REPO_ROOT / "configs"
GIB = 2**30
MACHINE = 24 * GIB  # the memory of the machine these limits were chosen on
ONE_STEP = [*TINY_RUN, "train.steps=1"]
REFUSED_WITHIN_S = 10.0  # a refusal builds nothing but meta tensors: well under a second, generous on a busy machine


@pytest.fixture(autouse=True)
def plain_process(monkeypatch):
    """`cond-lsgan train` tunes malloc for its process (process.py); in-process runs here leave pytest's alone."""
    monkeypatch.setattr(process, "keep_freed_memory", lambda: None)


def _error(capsys, code: int, prog: str, *fragments: str) -> str:
    """Assert exit code 2 and one error line with `fragments`; return the line."""
    stderr = capsys.readouterr().err
    assert_one_line_error(SimpleNamespace(returncode=code, stderr=stderr), prog, *fragments)
    return stderr.strip()


def _store(path: Path, size: int, count: int = 2, classes: int = 10) -> Path:
    rng = np.random.default_rng(0)
    with StoreWriter(path, size, ClassTable([str(i) for i in range(classes)]), ["test"], {}) as writer:
        writer.append(rng.integers(0, 256, (count, size, size), dtype=np.uint8), np.arange(count) % classes, 0)
    return path


def _train(tmp_path: Path, data: Path, config: str = "mnist.toml", *overrides: str) -> int:
    return cond_lsgan_main(["train", "--config", str(CONFIGS / config), "--data", str(data), "--out", str(tmp_path / "run"),
                            "train.device=cpu", *overrides])


# Image size in the store


@pytest.mark.parametrize("size", [0, 1025])
def test_a_store_of_an_image_size_out_of_range_is_refused_by_info_and_train(tmp_path, capsys, size):
    """A store whose images and image_size agree on 0x0 (or 1025x1025) passed every check before."""
    path = _store(tmp_path / "d.h5", 8)
    with h5py.File(path, "r+") as file:
        del file["images"]
        file.create_dataset("images", shape=(2, size, size), dtype=np.uint8)
        file.attrs["image_size"] = size
    expected = f"image size must be between 1 and 1024 pixels, got {size}"
    _error(capsys, data_tools_main(["info", str(path)]), "data-tools", expected)
    _error(capsys, _train(tmp_path, path), "cond-lsgan", expected)


def test_a_store_of_image_size_0_cannot_be_written(tmp_path):
    with pytest.raises(InputError, match="image size must be between 1 and 1024 pixels, got 0"):
        StoreWriter(tmp_path / "d.h5", 0, ClassTable(["a"]), ["test"], {})
    assert not (tmp_path / "d.h5").exists()


# The memory estimate


@pytest.fixture
def this_machine(monkeypatch):
    """The check sees 24 GiB available, whatever the machine running the tests has."""
    monkeypatch.setattr(memory, "available_memory", lambda device: MACHINE)


@pytest.mark.parametrize("config, size, overrides", [
    ("mnist.toml", 1024, []),  # seed32 at 1024px: its first layer alone has 839M weights
    ("hwdb3740.toml", 1024, []),  # paper28 at 1024px: D's FC layer has 21G weights
    ("hwdb3740.toml", 128, ["model.width=4.0"]),  # 5.4G weights in D's FC layer
    ("hwdb3740.toml", 28, ["train.batch_size=10000", "model.width=4.0"]),
    ("mnist.toml", 32, ["train.batch_size=10000"]),  # about 27 GiB; measured 2.3-2.5 MiB an image at batch 2,048
    ("mnist.toml", 1024, ["train.memory_check=true"]),
])
def test_a_run_too_large_for_the_machine_is_refused_before_anything_is_allocated(tmp_path, capsys, this_machine, config,
                                                                                  size, overrides):
    data = _store(tmp_path / "d.h5", size, classes=3740 if "hwdb" in config else 10)
    started = time.perf_counter()
    code = _train(tmp_path, data, config, *overrides)
    assert time.perf_counter() - started < REFUSED_WITHIN_S
    line = _error(capsys, code, "cond-lsgan", "training needs about ", "but cpu has 24.0 GiB available",
                  "lower train.batch_size, model.width or the image size", "train.memory_check=false")
    assert "GiB of memory" in line
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_the_refusal_allocates_nothing_large(tmp_path):
    """In a fresh process the peak RSS stays at what importing torch takes; building seed32 at 1024px needs 3.4 GB."""
    data = _store(tmp_path / "d.h5", 1024)
    body = (f"import resource, cond_lsgan.memory as m; from cond_lsgan.cli import main\n"
            f"m.available_memory = lambda device: {MACHINE}\n"
            f"code = main(['train', '--config', {str(CONFIGS / 'mnist.toml')!r}, '--data', {str(data)!r}, "
            f"'--out', {str(tmp_path / 'run')!r}, 'train.device=cpu'])\n"
            "print(code, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)\n")
    result = subprocess.run([sys.executable, "-c", body], capture_output=True, text=True, timeout=120)
    code, peak_mib = map(int, result.stdout.split())
    assert code == 2 and "training needs about" in result.stderr, result.stderr
    assert peak_mib < 1500, peak_mib


def test_the_override_lets_a_run_past_the_check_and_generate_checks_its_batch(tmp_path, capsys, monkeypatch, digits28):
    """With 1 MiB "available" a tiny paper28 run is refused; train.memory_check=false runs it. Generation is checked too."""
    monkeypatch.setattr(memory, "available_memory", lambda device: 2**20)
    train = ["train", "--config", str(CONFIGS / "demo.toml"), "--data", str(digits28), "--out", str(tmp_path / "run"), *ONE_STEP]
    _error(capsys, cond_lsgan_main(train), "cond-lsgan", "at batch 8 of 28px images", "but cpu has 1 MiB available")
    assert not (tmp_path / "run" / "checkpoints").exists()
    assert cond_lsgan_main([*train, "train.memory_check=false"]) == 0
    checkpoint = tmp_path / "run" / "checkpoints" / "step_0000001.pt"
    assert checkpoint.is_file(), sorted((tmp_path / "run").rglob("*"))
    capsys.readouterr()  # the run's log

    monkeypatch.setattr(memory, "available_memory", lambda device: 320 * 2**20)  # RUNTIME, and room for batches of 8
    generate = ["generate", "--checkpoint", str(checkpoint), "--classes", "0-2", "--per-class", "4", "--device", "cpu"]
    _error(capsys, cond_lsgan_main([*generate, "--batch-size", "65536", "--out", str(tmp_path / "g.h5")]), "cond-lsgan",
           "in batches of 65,536 needs about", "but cpu has 320 MiB available; lower --batch-size")
    assert not (tmp_path / "g.h5").exists()
    assert cond_lsgan_main([*generate, "--batch-size", "8", "--out", str(tmp_path / "g.h5")]) == 0


@pytest.mark.parametrize("config, classes, size", [
    ("mnist.toml", 10, 32), ("mnist-cond.toml", 10, 32), ("demo.toml", 39, 28), ("glyphs-cpu.toml", 3740, 28),
    ("hwdb3740.toml", 3740, 28),
])
def test_the_shipped_configs_pass_the_check(config, classes, size):
    glyphs = GlyphSet(np.zeros((1, size, size), np.uint8), np.zeros(1, np.int32), ClassTable([str(i) for i in range(classes)]),
                      ["test"], np.zeros(1, np.int32), {})
    settings = load_config(CONFIGS / config)
    memory.check_training_memory(settings, classes, glyphs, torch.device("cpu"), available=MACHINE)
    estimate = memory.estimate_training(settings, classes, size, settings.train.batch_size)
    assert estimate.total < 2 * GIB  # far below the machine: the factor leaves room without refusing normal runs


def test_the_mog_experiment_sizes_are_small():
    config = load_config(CONFIGS / "mog8.toml")
    assert memory.estimate_training(config, 0, 0, config.train.batch_size).total < memory.RUNTIME + 16 * 2**20


def test_the_estimate_counts_what_the_built_models_hold():
    """Parameter and buffer bytes against the real models; activations linear in the batch; state as documented."""
    config = load_config(CONFIGS / "glyphs-cpu.toml")
    generator, discriminator = build_models(config.model, 100, 28)
    g_bytes = sum(p.numel() * 4 for p in generator.parameters())
    d_bytes = sum(p.numel() * 4 for p in discriminator.parameters())
    g_buffers = sum(b.numel() * b.element_size() for b in generator.buffers())
    d_buffers = sum(b.numel() * b.element_size() for b in discriminator.buffers())
    small, large = (memory.estimate_training(config, 100, 28, batch) for batch in (16, 64))
    assert (small.generator_parameters, small.discriminator_parameters) == (g_bytes, d_bytes)
    assert small.state == 5 * g_bytes + 6 * d_bytes + 3 * g_buffers + 2 * d_buffers  # D: two weight gradients and their sum
    assert small.total == small.state + small.activations + memory.RUNTIME
    # Activations grow with the batch (a small part does not: the label kernels summed per border pattern).
    assert large.state == small.state and 3.5 < large.activations / small.activations <= 4.0
    # Each image keeps at least D's first conv output (c1 x 14 x 14 floats) and G's up1 output for backward.
    assert small.activations > 16 * 4 * (128 * 14 * 14 + 64 * 14 * 14)
    fixed = g_bytes + g_buffers + memory.RUNTIME
    up1 = 16 * 4 * 64 * 14 * 14  # G's largest activation at batch 16
    assert fixed + up1 < memory.estimate_generation(config.model, 100, 28, 16) < fixed + 6 * up1


def test_available_memory_is_the_least_of_meminfo_and_the_cgroup(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/meminfo").write_text("MemTotal: 24000000 kB\nMemAvailable: 20000000 kB\n")
    assert memory.available_memory(torch.device("cpu"), tmp_path) == 20000000 * 1024
    cgroup = tmp_path / "sys/fs/cgroup"
    cgroup.mkdir(parents=True)
    (cgroup / "memory.max").write_text("max\n")
    (cgroup / "memory.current").write_text("1000\n")
    assert memory.available_memory(torch.device("cpu"), tmp_path) == 20000000 * 1024  # no limit
    (cgroup / "memory.max").write_text(f"{4 * GIB}\n")
    assert memory.available_memory(torch.device("cpu"), tmp_path) == 4 * GIB - 1000
    assert memory.available_memory(torch.device("meta"), tmp_path) is None  # unknown: the check is skipped


# Devices and architectures


@pytest.mark.parametrize("device", ["meta", "mps", "cuda", "cuda:7", "cpu:3", "gpu", "cuda:x"])
def test_a_device_this_machine_lacks_is_one_line_naming_the_devices_it_has(tmp_path, capsys, few_digits28, device):
    if device == "mps" and torch.backends.mps.is_available() or device == "cuda" and torch.cuda.is_available() \
            or device == "cuda:7" and torch.cuda.device_count() > 7:
        pytest.skip(f"{device} exists here")
    code = cond_lsgan_main(["train", "--config", str(CONFIGS / "demo.toml"), "--data", str(few_digits28),
                            "--out", str(tmp_path / "run"), *ONE_STEP, f"train.device={device}"])
    _error(capsys, code, "cond-lsgan", f"train.device {device!r}", "devices here: auto, cpu")
    with pytest.raises(InputError, match=f"--device {device!r} .*devices here: auto, cpu"):
        resolve_device(device, "--device")


def test_the_devices_that_exist_resolve():
    assert resolve_device("cpu") == torch.device("cpu") and resolve_device("cpu:0") == torch.device("cpu:0")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_mlp2d_on_an_image_store_is_one_line(tmp_path, capsys, few_digits28):
    code = _train(tmp_path, few_digits28, "mog8.toml", "train.batch_size=8", "train.steps=1")
    _error(capsys, code, "cond-lsgan", "model.arch 'mlp2d' is a model of 2-D points", "not of 28x28 images",
           "seed32, paper28")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_an_image_model_for_points_is_refused():
    with pytest.raises(InputError, match="makes images, not 2-D points; choose one of: mlp2d"):
        build_models(Config().model, 0, 0)
