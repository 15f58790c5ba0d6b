"""Fixtures shared by the test files: the synthetic digit stores, written once per session,
`tiny_run` (a tiny training run, in this process), and a check that no test leaves a thread running.

The tiny model configs are in helpers.py (TINY_PAPER28, TINY_TRAIN, TINY_RUN, tiny_config), with
the other plain data the tests import.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from data_tools.store import write_store
from data_tools.synthetic import synthetic_digits
from helpers import tiny_config

THREAD_GRACE_S = 5.0  # a cancelled Timer or a closed pool's worker needs a moment to return


def _digit_store(name: str, count: int, size: int, seed: int, use: str):
    """A session fixture `name`: the path of a store of `count` synthetic digits, written once. Read it, never write it."""

    def write(tmp_path_factory) -> Path:
        path = tmp_path_factory.mktemp("digits") / f"{name}.h5"
        write_store(path, synthetic_digits(count, size=size, seed=seed))
        return path

    write.__doc__ = f"{count} synthetic digits of {size}x{size} (seed {seed}), {use}. Read it, never write it."
    return pytest.fixture(scope="session", name=name)(write)


digits32 = _digit_store("digits32", 64, 32, seed=1, use="8 batches of 8, for seed32 runs")
digits28 = _digit_store("digits28", 64, 28, seed=1, use="8 batches of 8, for paper28 runs")
few_digits32 = _digit_store("few_digits32", 32, 32, seed=2, use="for CLI runs of a step or two")
few_digits28 = _digit_store("few_digits28", 32, 28, seed=2, use="for CLI runs of a step or two")


@pytest.fixture(scope="session")
def tiny_run(digits28, tmp_path_factory):
    """Train a tiny paper28 run in this process: `tiny_run(*overrides, data=, out=, resume=)` -> its TrainResult.

    The config is tiny_config(*overrides) (demo.toml, TINY_RUN, then the overrides); `data`
    defaults to the digits28 store, `out` to a new folder. Callable from fixtures of any scope.
    """
    from cond_lsgan.training.loop import train  # here: a test file of data-tools alone need not import torch

    def run(*overrides: str, data: Path | None = None, out: Path | None = None, resume: str | Path | None = None):
        data = digits28 if data is None else data
        out = tmp_path_factory.mktemp("tiny_run") / "run" if out is None else out
        return train(tiny_config(*overrides), data, out, resume=None if resume is None else str(resume))

    return run


def _lingering_threads(others: set[threading.Thread]) -> list[threading.Thread]:
    """Non-daemon threads other than the main thread and `others`, after giving each a moment to end."""
    lingering = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon and t not in others]
    for thread in lingering:
        thread.join(THREAD_GRACE_S)
    return [t for t in lingering if t.is_alive()]


@pytest.fixture(autouse=True)
def no_thread_outlives_its_test():
    """A non-daemon thread a test (or its function-scoped fixtures) started must be gone when it ends."""
    before = set(threading.enumerate())
    yield
    lingering = _lingering_threads(before)
    assert not lingering, f"non-daemon threads still running after the test: {lingering}"


@pytest.fixture(scope="session", autouse=True)
def no_thread_outlives_the_session():
    """At the end, only the main thread and daemon threads are left (module and session fixtures included)."""
    yield
    lingering = _lingering_threads(set())
    assert not lingering, f"non-daemon threads still running at the end of the session: {lingering}"
