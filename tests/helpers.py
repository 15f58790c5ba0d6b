"""Small data the tests build for themselves (IDX bytes, tiny stores), the tiny model configs, CLI runners.

The tiny runs: TINY_PAPER28 (the model), TINY_TRAIN (the train settings every tiny run
shares), TINY_RUN (both, on demo.toml) and `tiny_config`; conftest.py's `tiny_run` fixture
trains one. A test adds only the overrides its purpose needs (steps, a checkpoint every step).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import signal
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator

import numpy as np

from cond_lsgan.config import Config, load_config
from data_tools.store import ClassTable, StoreWriter

REPO_ROOT = Path(__file__).resolve().parent.parent

# paper28 at 1/8 width with short noise and label vectors: trains a step in milliseconds on the CPU.
TINY_PAPER28 = ["model.arch=paper28", "model.conditional=true", "model.z_dim=16", "model.embed_dim=8",
                "model.width=0.125", "train.order=d_then_g", "train.device=cpu"]
# The train settings of every tiny run, whatever its model: the CPU, batches of 8, fp32 (the same
# numbers on a CPU with bf16 as without), a 4-image grid, a metrics line each step, grids only at
# the end (a run always logs, samples and checkpoints its last step).
TINY_TRAIN = ["train.device=cpu", "train.batch_size=8", "train.precision=fp32", "train.grid_size=4", "train.log_every=1",
              "train.sample_every=100000"]
DEMO = REPO_ROOT / "configs" / "demo.toml"  # paper28, conditional
TINY_RUN = [*TINY_PAPER28, *TINY_TRAIN]  # the tiny paper28 run, on DEMO
ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}  # a CLI process of a tiny model: one thread is fastest
TINY_JUDGE = {"channels": 8, "feature_dim": 32}  # a judge's (or classifier's) sizes: trains hundreds of steps in seconds


def tiny_config(*overrides: str) -> Config:
    """DEMO with TINY_RUN, then `overrides`."""
    return load_config(DEMO, [*TINY_RUN, *overrides])


def idx_images_bytes(images: np.ndarray, magic: int = 0x00000803) -> bytes:
    """An IDX3 file's bytes for uint8 (N, rows, cols)."""
    count, rows, cols = images.shape
    return struct.pack(">IIII", magic, count, rows, cols) + images.astype(np.uint8).tobytes()


def idx_labels_bytes(labels: np.ndarray, magic: int = 0x00000801) -> bytes:
    """An IDX1 file's bytes for uint8 (N,)."""
    return struct.pack(">II", magic, len(labels)) + np.asarray(labels, dtype=np.uint8).tobytes()


def random_digits(count: int, size: int = 28, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random uint8 images (count, size, size) and labels 0..9 (every digit present if count >= 10)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, size, size), dtype=np.uint8)
    labels = (np.arange(count) % 10).astype(np.uint8)
    rng.shuffle(labels)
    return images, labels


def write_idx_dir(folder: Path, split: str, images: np.ndarray, labels: np.ndarray, gz: bool = False) -> tuple[Path, Path]:
    """Write an MNIST-style pair of IDX files for `split` into `folder`; return their paths."""
    prefix = {"train": "train", "test": "t10k"}[split]
    suffix = ".gz" if gz else ""
    folder.mkdir(parents=True, exist_ok=True)
    images_path = folder / f"{prefix}-images-idx3-ubyte{suffix}"
    labels_path = folder / f"{prefix}-labels-idx1-ubyte{suffix}"
    pack = gzip.compress if gz else bytes
    images_path.write_bytes(pack(idx_images_bytes(images)))
    labels_path.write_bytes(pack(idx_labels_bytes(labels)))
    return images_path, labels_path


def write_tiny_store(path: Path, count: int = 12, size: int = 8, classes: tuple[str, ...] = ("a", "b", "啊"), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A small valid store with two sources; returns (images, labels) written."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, size, size), dtype=np.uint8)
    labels = rng.integers(0, len(classes), size=count).astype(np.int32)
    with StoreWriter(path, size, ClassTable(list(classes)), ["font A", "font B"], {"test": True}) as writer:
        writer.append(images, labels, np.arange(count) % 2)
    return images, labels


def run_module(module: str, *args: str | os.PathLike, cwd: Path | None = None, timeout: float = 300,
               extra_path: Path | None = None) -> subprocess.CompletedProcess:
    """Run `python -m MODULE ARGS` in a fresh process, importable whether installed or not (`extra_path` first on its path)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [extra_path and str(extra_path), str(REPO_ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout,
    )


def run_data_tools(*args: str | os.PathLike, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return run_module("data_tools", *args, cwd=cwd)


def run_cond_lsgan(*args: str | os.PathLike, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return run_module("cond_lsgan", *args, cwd=cwd)


def assert_one_line_error(result: subprocess.CompletedProcess, prog: str, *fragments: str) -> None:
    """Exit code 2, a single `PROG: error:` line naming the problem, no traceback."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    assert "Traceback" not in result.stderr
    assert_mentions(lines[0], *fragments)


def assert_mentions(message: str, *fragments: str) -> None:
    """Each fragment (an option, a value, a file, the key phrase) is in `message`: a check that survives rewording."""
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"


def file_digests(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, by relative path: what a test compares before and after."""
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


@contextlib.contextmanager
def live_trainer(command: list, until: str, env: dict, timeout: float = 90) -> Iterator[subprocess.Popen]:
    """A training process of `command`, yielded once a line of its stderr starts with `until`; killed if still alive at the end.

    A hang kills it after `timeout` seconds, so the test fails instead of stalling.
    """
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    timer = threading.Timer(timeout, process.kill)
    timer.start()
    try:
        for line in process.stderr:
            if line.startswith(until):
                break
        yield process
    finally:
        timer.cancel()
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stderr.close()


def stop_trainer(process: subprocess.Popen) -> str:
    """SIGTERM a live_trainer: it saves a checkpoint and exits with 143; returns the rest of its stderr."""
    process.send_signal(signal.SIGTERM)
    rest = process.stderr.read()
    assert process.wait(60) == 143, rest
    return rest


def torchrun(*args: object, nproc: int = 2, launcher: tuple[str, ...] = (), path: tuple[str, ...] = (),
             timeout: float = 240) -> subprocess.CompletedProcess:
    """`python -m torch.distributed.run --standalone` (a free rendezvous port of its own) running `cond_lsgan ARGS`."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [*path, str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", *launcher,
               "-m", "cond_lsgan", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
