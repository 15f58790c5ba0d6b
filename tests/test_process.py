"""Process-wide settings belong to the programs that own the process, never to library calls.

glibc has no getter for its malloc options, so the test asks malloc itself: a 64 MiB
block comes from fresh mmap pages under glibc's defaults (above its 32 MiB cap on the
mmap threshold) and from the heap once `keep_freed_memory` turned mmap off. Each case
runs in a fresh interpreter, since the setting cannot be undone.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from helpers import TINY_PAPER28

# Prints "heap" or "mmap": where a 64 MiB malloc lands after running BODY.
PROBE = """
import ctypes
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
def where_large_blocks_come_from():
    address = libc.malloc(64 << 20)
    with open("/proc/self/maps") as maps:
        heap = [line.split()[0] for line in maps if line.rstrip().endswith("[heap]")]
    libc.free(ctypes.c_void_p(address))
    inside = any(int(start, 16) <= address < int(end, 16) for start, end in (span.split("-") for span in heap))
    return "heap" if inside else "mmap"
{body}
print(where_large_blocks_come_from())
"""

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc and /proc/self/maps")


def large_blocks_after(body: str) -> str:
    script = PROBE.format(body=textwrap.dedent(body))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()[-1]


def test_the_probe_tells_the_setting_apart():
    assert large_blocks_after("") == "mmap"
    assert large_blocks_after("from cond_lsgan.process import keep_freed_memory; keep_freed_memory()") == "heap"


@pytest.mark.slow  # a fresh interpreter importing torch
def test_building_and_stepping_a_training_step_leaves_malloc_alone():
    """What a notebook user does: TrainingStep on the CPU, a few steps; the process keeps glibc's defaults."""
    body = f"""
        import torch
        from cond_lsgan.config import Config, apply_overrides
        from cond_lsgan.training.step import TrainingStep
        config = apply_overrides(Config(), {TINY_PAPER28!r} + ["train.batch_size=8"])
        trainer = TrainingStep(config, 10, 28, torch.device("cpu"))
        for index in range(2):
            trainer.step(torch.randint(0, 256, (8, 28, 28), dtype=torch.uint8), torch.arange(8) % 10, index)
    """
    assert large_blocks_after(body) == "mmap"


@pytest.mark.slow
def test_the_train_command_applies_the_setting(tmp_path):
    """`cond-lsgan train` (its main(), in this process) owns the process and turns the setting on for a CPU run."""
    body = f"""
        from data_tools.store import write_store
        from data_tools.synthetic import synthetic_digits
        from cond_lsgan.cli import main
        write_store({str(tmp_path / "d.h5")!r}, synthetic_digits(16, size=28, seed=0))
        open({str(tmp_path / "c.toml")!r}, "w").close()  # defaults, then the overrides
        assert main(["train", "--config", {str(tmp_path / "c.toml")!r}, "--data", {str(tmp_path / "d.h5")!r}, "--out", {str(tmp_path / "run")!r},
                     *{TINY_PAPER28!r}, "train.batch_size=8", "train.steps=1", "train.device=cpu"]) == 0
    """
    assert large_blocks_after(body) == "heap"
