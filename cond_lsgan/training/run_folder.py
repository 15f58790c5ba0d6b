"""One writer per run folder, the clean-up of what a dead writer left in it, and of a run that failed at once.

`RunLock` holds an `fcntl.flock` on the run folder itself (its directory descriptor) for
the life of a training process (rank 0 under torchrun): the kernel drops the lock when its
process ends however it ends, kill -9 included, so a dead run never blocks the next one.
The folder, not a file in it, because a file can be replaced under a live run (another
program's `os.replace` onto `<run>/.lock` makes a new, unlocked file there) and a second
run would then train beside the first; no write in the folder replaces the folder.
`<run>/.lock` is flocked too (what older versions lock) and records the holder (pid, host,
start), which is what a second process is told (from /proc/locks if the record was
replaced); it is emptied on a clean exit: a record found at start-up is a writer that died
holding the run, and taking over says so. While the lock is held nobody else writes the
folder, so temporary files of our own pattern (an interrupted atomic write, see
data_tools/atomic.py) are leftovers and `remove_leftovers` deletes them. A run that fails
before its first checkpoint removes the folder it made itself (and the parents it made),
if nothing but the run's own files is in it: a failed start leaves no half run folder.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import socket
import time
from pathlib import Path

from ..data_tools_api import InputError, make_parent_folder, write_error

LOCK_NAME = ".lock"
# The files a run writes at its top level besides checkpoints and grids (loop.py, resume.py), which
# the CLI keeps apart from its inputs.
CONFIG_FILE, METRICS_FILE, LOG_FILE = "config.json", "metrics.jsonl", "log.txt"
RUN_FILES = (CONFIG_FILE, METRICS_FILE, LOG_FILE)
# atomic_output's temporary names: ".<final name>.<mkstemp's random part>.tmp", for the files a run writes.
_LEFTOVER = re.compile(r"^\.(config\.json|step_\d+\.(pt|png))\.[A-Za-z0-9_]+\.tmp$")
_RECORD = re.compile(r"^pid \d+ on .+, started \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
# What a run writes in its folder before its first checkpoint: the one kind of folder a failed start removes.
_OWN = {"samples": re.compile(r"^step_\d+\.png$"), "tensorboard": re.compile(r"^events\.out\.tfevents\..+$"),
        "checkpoints": None}  # checkpoints/: made empty by a first save that failed; holding a checkpoint, never removed


class RunLock:
    """`with RunLock(run_dir):` the calling process is the folder's only writer, or InputError naming the holder.

    `notes` says what was found on taking it (a dead holder's record, leftovers removed),
    for the run's log. A folder the lock created is removed again if the run fails before
    its first checkpoint and holds only the run's own files. With `enabled=False` (ranks
    other than 0) it does nothing.
    """

    def __init__(self, run_dir: str | Path, enabled: bool = True) -> None:
        self.run_dir, self.enabled = Path(run_dir), enabled
        self.path = self.run_dir / LOCK_NAME
        self.notes: list[str] = []
        self._fds: list[int] = []  # the folder's descriptor (where its file system can lock one), then .lock's
        self._created: list[Path] = []  # the folders taking the lock made: the run folder, then its new parents

    def __enter__(self) -> RunLock:
        if not self.enabled:
            return self
        created = [folder for folder in (self.run_dir, *self.run_dir.parents) if not folder.exists()]
        make_parent_folder(self.path)
        fds = []
        try:
            fds.append(os.open(self.run_dir, os.O_RDONLY | os.O_DIRECTORY))
            fds.append(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666))
        except OSError as error:
            _close(fds)
            raise write_error(self.path, error) from None
        folder_fd, fd = fds
        try:
            try:
                fcntl.flock(folder_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                if isinstance(error, BlockingIOError):
                    raise
                # e.g. NFS, which emulates flock with locks that a read-only (folder) descriptor cannot take
                fds.remove(folder_fd)
                os.close(folder_fd)
                folder_fd = None
                self.notes.append(f"the file system of {self.run_dir} cannot lock a folder, so the lock is {self.path} "
                                  "alone: a program that replaces that file lets a second run in")
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd, folder_fd)
            _close(fds)
            raise InputError(f"{self.run_dir} is in use by another training run ({holder}); "
                             "wait for it to end or choose another --out") from None
        self._fds, self._created = fds, created
        previous = _read(fd)
        if _RECORD.match(previous):
            self.notes.append(f"took over {self.path} from a run that ended without releasing it ({previous})")
        elif previous:
            self.notes.append(f"{self.path} held no run record ({previous[:60]!r}); replaced it with this run's")
        record = f"pid {os.getpid()} on {socket.gethostname()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}"
        os.ftruncate(fd, 0)
        os.pwrite(fd, record.encode(), 0)
        removed = remove_leftovers(self.run_dir)
        if removed:
            count, size = len(removed), sum(size for _, size in removed)
            self.notes.append(f"removed {count} temporary file{'s' if count > 1 else ''} ({size / 1e6:.1f} MB) "
                              "left by an interrupted write")
        return self

    def __exit__(self, error_type: type | None, *exc_info: object) -> None:
        if not self._fds:
            return
        fd = self._fds[-1]
        if error_type is not None and self._created and _only_a_failed_start(self.run_dir):
            try:
                shutil.rmtree(self.run_dir)  # checked: the run's own files, no checkpoint, nothing of anyone else
                for parent in self._created[1:]:  # the parents it made, while nothing else went in them
                    parent.rmdir()
            except OSError:
                pass  # the failure being raised is the user's news, not this clean-up
        else:
            os.ftruncate(fd, 0)  # an empty record: released cleanly (a file that replaced ours is not ours to empty)
        for each in reversed(self._fds):
            fcntl.flock(each, fcntl.LOCK_UN)
        _close(self._fds)
        self._fds = []


def remove_leftovers(run_dir: Path) -> list[tuple[Path, int]]:
    """Delete our own temporary files in the run folder, its checkpoints/ and samples/; (path, bytes) of each.

    Only call it holding the run's lock: a live writer's temporary file looks the same.
    """
    removed = []
    for folder in (run_dir, run_dir / "checkpoints", run_dir / "samples"):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if _LEFTOVER.match(path.name) and path.is_file():
                size = path.stat().st_size
                path.unlink(missing_ok=True)
                removed.append((path, size))
    return removed


def _only_a_failed_start(run_dir: Path) -> bool:
    """Whether `run_dir` holds nothing but what a run writes before its first checkpoint (no link, nobody's file)."""
    for entry in os.scandir(run_dir):
        if entry.is_symlink():
            return False
        if entry.name in (LOCK_NAME, *RUN_FILES) and entry.is_file():
            continue
        if entry.name not in _OWN or not entry.is_dir():
            return False
        pattern = _OWN[entry.name]
        for inner in os.scandir(entry.path):
            if pattern is None or inner.is_symlink() or not inner.is_file() or not pattern.match(inner.name):
                return False
    return True


def _close(fds: list[int]) -> None:
    for fd in reversed(fds):
        os.close(fd)


def _holder(fd: int, folder_fd: int | None) -> str:
    """Who holds the run: the record in .lock, or where another program replaced it, the pid the kernel names."""
    record = _read(fd)
    if _RECORD.match(record) or folder_fd is None:
        return record or "another process"
    try:
        status = os.fstat(folder_fd)
        inode = f"{os.major(status.st_dev):02x}:{os.minor(status.st_dev):02x}:{status.st_ino}"
        with open("/proc/locks", encoding="ascii") as locks:
            for line in locks:  # "1: FLOCK  ADVISORY  WRITE 7789 fe:00:2146927 0 EOF"
                fields = line.split()
                if len(fields) > 5 and fields[1] == "FLOCK" and fields[5] == inode:
                    return f"pid {fields[4]}; its record in {LOCK_NAME} was replaced by another program"
    except (OSError, ValueError):
        pass
    return "another process"


def _read(fd: int) -> str:
    return os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
