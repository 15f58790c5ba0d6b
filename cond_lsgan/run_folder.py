"""One writer per run folder, and the clean-up of what a dead writer left in it.

`RunLock` holds `<run>/.lock` for the life of a training process (rank 0 under torchrun)
through `fcntl.flock`: the kernel drops the lock when its process ends however it ends,
kill -9 included, so a dead run never blocks the next one. The file also records the
holder (pid, host, start), which is what a second process is told, and is emptied on a
clean exit: a record found at start-up is a writer that died holding the run, and taking
over says so. While the lock is held nobody else writes the folder, so temporary files
of our own pattern (an interrupted atomic write, see data_tools/atomic.py) are leftovers
and `remove_leftovers` deletes them.
"""

from __future__ import annotations

import fcntl
import os
import re
import socket
import time
from pathlib import Path

from .shared import InputError, make_parent_folder, write_error

LOCK_NAME = ".lock"
# The files a run writes at its top level besides checkpoints and grids (training.py, resume.py), which
# the CLI keeps apart from its inputs.
CONFIG_FILE, METRICS_FILE, LOG_FILE = "config.json", "metrics.jsonl", "log.txt"
RUN_FILES = (CONFIG_FILE, METRICS_FILE, LOG_FILE)
# atomic_output's temporary names: ".<final name>.<mkstemp's random part>.tmp", for the files a run writes.
_LEFTOVER = re.compile(r"^\.(config\.json|step_\d+\.(pt|png))\.[A-Za-z0-9_]+\.tmp$")


class RunLock:
    """`with RunLock(run_dir):` the calling process is the folder's only writer, or InputError naming the holder.

    `notes` says what was found on taking it (a dead holder's record, leftovers removed),
    for the run's log. A folder the lock created is removed again if the run fails before
    writing anything into it. With `enabled=False` (ranks other than 0) it does nothing.
    """

    def __init__(self, run_dir: str | Path, enabled: bool = True) -> None:
        self.run_dir, self.enabled = Path(run_dir), enabled
        self.path = self.run_dir / LOCK_NAME
        self.notes: list[str] = []
        self._fd: int | None = None
        self._created = False  # whether taking the lock made the run folder

    def __enter__(self) -> RunLock:
        if not self.enabled:
            return self
        self._created = not self.run_dir.exists()
        make_parent_folder(self.path)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as error:
            raise write_error(self.path, error) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd) or "another process"
            os.close(fd)
            raise InputError(f"{self.run_dir} is in use by another training run ({holder}); "
                             "wait for it to end or choose another --out") from None
        self._fd = fd
        previous = _read(fd)
        if previous:
            self.notes.append(f"took over {self.path} from a run that ended without releasing it ({previous})")
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
        if self._fd is None:
            return
        if error_type is not None and self._created and os.listdir(self.run_dir) == [LOCK_NAME]:
            self.path.unlink()  # a run refused before it wrote anything leaves no folder behind
            self.run_dir.rmdir()
        os.ftruncate(self._fd, 0)  # an empty record: released cleanly
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None


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


def _read(fd: int) -> str:
    return os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
