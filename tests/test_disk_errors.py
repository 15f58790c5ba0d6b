"""Writing a store, a checkpoint or a PNG where the disk is full or read-only: one error
line and exit code 2, the previous file untouched, no temporary file left behind.

The conditions are real, not mocks:
- full: a small tmpfs filled to the last few bytes, where this machine lets us mount one
  (root with mount rights); everywhere else a file size limit (RLIMIT_FSIZE, which needs
  no privileges; the write then fails with EFBIG, as on a full quota). The file size limit
  is also tested on its own.
- read-only: a read-only bind mount, else an immutable folder (chattr +i), else (not root)
  a folder without write permission.
"""

from __future__ import annotations

import ast
import concurrent.futures
import contextlib
import errno
import os
import resource
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import data_tools.errors
from data_tools.errors import find_write_failure
from data_tools.guarded_file import GuardedFile
from data_tools.store import write_store
from data_tools.synthetic import synthetic_digits
from helpers import REPO_ROOT

TMPFS_SIZE = 32 << 20


def _run(module: str, *args, file_size_limit: int | None = None) -> subprocess.CompletedProcess:
    """`python -m MODULE ARGS`, with RLIMIT_FSIZE set in the child when given."""

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
           "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=300, preexec_fn=limit if file_size_limit is not None else None)


def _privileged(*command: str) -> bool:
    """Run a command that needs root (mount, chattr); whether it worked."""
    if os.geteuid() != 0 or shutil.which(command[0]) is None:
        return False
    return subprocess.run(command, capture_output=True).returncode == 0


@dataclass
class Cramped:
    """A folder that takes at most `room` more bytes per written file (tmpfs) or per file (limit)."""

    folder: Path
    room: int
    mechanism: str  # "tmpfs" or "file size limit"

    def fill(self) -> None:
        """On tmpfs: fill the free space, leaving `room` bytes."""
        if self.mechanism != "tmpfs":
            return
        stats = os.statvfs(self.folder)
        left = stats.f_bavail * stats.f_frsize - self.room
        with open(self.folder / "filler", "wb") as handle:
            block = bytes(1 << 16)
            with contextlib.suppress(OSError):
                while left > 0:
                    left -= handle.write(block[: min(len(block), left)])

    def run(self, module: str, *args) -> subprocess.CompletedProcess:
        return _run(module, *args, file_size_limit=self.room if self.mechanism == "file size limit" else None)


@pytest.fixture(params=["disk full", "file size limit"])
def cramped(request, tmp_path):
    """Factory: cramped(room) -> Cramped. "disk full" is a filled tmpfs where mounting is allowed."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = request.param == "disk full" and _privileged("mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(folder))
    try:
        yield lambda room: Cramped(folder, room, "tmpfs" if mounted else "file size limit")
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@contextlib.contextmanager
def read_only(folder: Path):
    """Make `folder` read-only for this user, by the strongest means this machine allows."""
    if _privileged("mount", "--bind", str(folder), str(folder)):
        try:
            if _privileged("mount", "-o", "remount,ro,bind", str(folder)):
                yield "read-only bind mount"
                return
        finally:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)
    if _privileged("chattr", "+i", str(folder)):
        try:
            yield "immutable folder"
        finally:
            subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
        return
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield "no write permission"
        finally:
            folder.chmod(0o755)
        return
    pytest.skip("root without mount or chattr: no way to make a folder read-only here")


def _assert_failed_cleanly(result: subprocess.CompletedProcess, prog: str, target: Path, reasons: tuple[str, ...]) -> None:
    """Exit 2; the last stderr line (training logs progress before it) is the only error, naming the target."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    errors = [line for line in lines if line.startswith(f"{prog}: error: ")]
    assert errors == [lines[-1]], result.stderr
    assert f"cannot write {target}: " in lines[-1], lines[-1]
    assert any(reason in lines[-1] for reason in reasons), lines[-1]


def _assert_untouched(folder: Path, previous: dict[Path, bytes]) -> None:
    for path, data in previous.items():
        assert path.read_bytes() == data, f"{path} changed"
    assert not [p.name for p in folder.rglob(".*.tmp")], "a temporary file was left behind"


FULL = ("No space left on device", "File too large")
READ_ONLY = ("Read-only file system", "Operation not permitted", "Permission denied")


@pytest.fixture(scope="module")
def data(tmp_path_factory, few_digits28, tiny_run) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("disk-data")
    write_store(root / "other.h5", synthetic_digits(16, size=28, seed=5))
    run = root / "run"
    tiny_run("train.steps=1", data=few_digits28, out=run)
    return {"digits": few_digits28, "other": root / "other.h5", "run": run,
            "checkpoint": run / "checkpoints" / "step_0000001.pt"}


@pytest.mark.slow  # the CLI in subprocesses
def test_store_on_a_full_disk(cramped, data):
    location = cramped(200_000)  # a store of 32 images is over 500 kB (its label chunks alone are 2 x 256 kB)
    target = location.folder / "merged.h5"
    shutil.copy(data["other"], target)
    previous = {target: target.read_bytes()}
    location.fill()
    result = location.run("data_tools", "merge", data["digits"], "--out", target)
    _assert_failed_cleanly(result, "data-tools", target, FULL)
    _assert_untouched(location.folder, previous)


@pytest.mark.slow  # the CLI in subprocesses
def test_split_on_a_full_disk_names_the_users_path(cramped, data):
    """split writes both stores through temporary files; the message names --train or --test, never those."""
    location = cramped(200_000)
    train, test = location.folder / "train.h5", location.folder / "test.h5"
    location.fill()
    result = location.run("data_tools", "split", data["digits"], "--test-fraction", "0.5", "--train", train, "--test", test)
    target = train if f"cannot write {train}: " in result.stderr else test
    _assert_failed_cleanly(result, "data-tools", target, FULL)
    assert ".tmp" not in result.stderr, result.stderr
    _assert_untouched(location.folder, {})
    assert not train.exists() and not test.exists()


@pytest.mark.slow  # the CLI in subprocesses
def test_checkpoint_on_a_full_disk(cramped, data):
    location = cramped(1 << 20)  # room for the run's logs and sample grid, not for a 4 MB checkpoint
    run = location.folder / "run"
    shutil.copytree(data["run"], run)
    previous = {path: path.read_bytes() for path in (run / "checkpoints").iterdir()}
    location.fill()
    result = location.run("cond_lsgan", "train", "--data", data["digits"], "--out", run, "--resume", "auto", "train.steps=2")
    _assert_failed_cleanly(result, "cond-lsgan", run / "checkpoints" / "step_0000002.pt", FULL)
    _assert_untouched(run / "checkpoints", previous)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_0000001.pt"]


@pytest.mark.slow  # the CLI in subprocesses
def test_generated_store_and_grid_past_a_file_size_limit(data, tmp_path):
    """Generation writes through the same store writer and PNG writer; 1 kB per file is too little for either."""
    store, grid = tmp_path / "gen.h5", tmp_path / "grid.png"
    shutil.copy(data["other"], store)
    grid.write_bytes(b"previous grid")
    previous = {store: store.read_bytes(), grid: grid.read_bytes()}
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        generated = pool.submit(_run, "cond_lsgan", "generate", "--checkpoint", data["checkpoint"], "--all", "--per-class", "1",
                                "--out", store, "--device", "cpu", file_size_limit=1000)
        sampled = pool.submit(_run, "cond_lsgan", "sample", "--checkpoint", data["checkpoint"], "--n", "2", "--out", grid,
                              "--device", "cpu", file_size_limit=10)
    _assert_failed_cleanly(generated.result(), "cond-lsgan", store, ("File too large",))
    _assert_failed_cleanly(sampled.result(), "cond-lsgan", grid, ("File too large",))
    _assert_untouched(tmp_path, previous)


@pytest.mark.slow  # the CLI in subprocesses
def test_store_and_checkpoint_in_a_read_only_folder(data, tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    target = folder / "merged.h5"
    shutil.copy(data["other"], target)
    run = tmp_path / "run"
    shutil.copytree(data["run"], run)
    checkpoints = run / "checkpoints"
    previous = {target: target.read_bytes(), **{path: path.read_bytes() for path in checkpoints.iterdir()}}
    with read_only(folder), read_only(checkpoints), concurrent.futures.ThreadPoolExecutor(2) as pool:
        store_run = pool.submit(_run, "data_tools", "merge", data["digits"], "--out", target)
        train_run = pool.submit(_run, "cond_lsgan", "train", "--data", data["digits"], "--out", run, "--resume", "auto",
                                "train.steps=2")
        store_result, train_result = store_run.result(), train_run.result()
    _assert_failed_cleanly(store_result, "data-tools", target, READ_ONLY)
    _assert_failed_cleanly(train_result, "cond-lsgan", checkpoints / "step_0000002.pt", READ_ONLY)
    _assert_untouched(folder, previous)
    _assert_untouched(checkpoints, previous)


@pytest.mark.slow  # the CLI in subprocesses
def test_output_where_a_file_is_in_the_way(data, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    result = _run("data_tools", "merge", data["digits"], "--out", blocker / "sub" / "merged.h5")
    _assert_failed_cleanly(result, "data-tools", blocker / "sub" / "merged.h5", (f"{blocker} is a file, not a folder",))


def test_errors_imports_nothing_from_the_package():
    """`errors` (with run_cli's write-failure check) is at the bottom of the package: no import circle."""
    nodes = list(ast.walk(ast.parse(Path(data_tools.errors.__file__).read_text())))
    relative = [node.module for node in nodes if isinstance(node, ast.ImportFrom) and node.level]
    absolute = [node.module for node in nodes if isinstance(node, ast.ImportFrom) and not node.level]
    absolute += [alias.name for node in nodes if isinstance(node, ast.Import) for alias in node.names]
    assert relative == [] and [name for name in absolute if name.split(".")[0] == "data_tools"] == []


def test_find_write_failure_follows_the_chain_of_causes():
    full = OSError(errno.ENOSPC, "No space left on device")
    try:
        try:
            raise full
        except OSError:
            raise RuntimeError("torch.save failed")  # its context is the OSError, as torch.save's is
    except RuntimeError as error:
        assert find_write_failure(error) is full
    assert find_write_failure(OSError(errno.ENOENT, "No such file or directory")) is None


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full, where every write fails with ENOSPC")
def test_guarded_file_keeps_a_failed_write_from_hdf5_and_reads_it_back():
    """HDF5 reads back what it wrote (a heap): after a failed write that must still be there, or libhdf5 crashes."""
    sink = GuardedFile("/dev/full")
    try:
        assert sink.write(b"heap data") == 9
        assert sink.error.errno == errno.ENOSPC
        sink.seek(5)
        sink.write(b"DATA")
        sink.seek(0)
        assert sink.read(9) == b"heap DATA"
    finally:
        sink.close()


def test_guarded_file_writes_nothing_more_once_discarded(tmp_path):
    path = tmp_path / "glyphs.h5"
    path.write_bytes(b"")
    sink = GuardedFile(path)
    try:
        sink.write(b"on disk ")
        sink.discard = True
        sink.write(b"kept")
        sink.seek(16)
        sink.write(b"far")
        sink.seek(10)
        sink.write(b"EP")  # over part of an earlier write
        sink.seek(0)
        assert sink.read() == b"on disk keEP\0\0\0\0far"  # the gap reads as zeros, as past the end of a file
        assert sink.error is None and path.read_bytes() == b"on disk "
    finally:
        sink.close()
