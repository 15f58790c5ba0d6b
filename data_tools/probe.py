"""Check a glyph store from outside in a child process before this process reads it.

Why a child: HDF5 is a C library, and on some damaged or crafted files (a few flipped
bits in its metadata) it crashes the process or loops forever instead of reporting an
error. The data-tools commands that read a store given to them (`info`, `preview`,
`merge`, `split`) call `probe_store` on it first, so a crash or a hang ends the child,
not the command, and comes out as one InputError line. The readers in `store` never
fork: a training process holds threads, and forking such a process is unsafe.

Off Linux (no fork on Windows; fork is fragile on macOS), or when no process can be
forked, the store is checked in this process only.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sys
import time
from pathlib import Path

from .errors import InputError
from .store import ClassTable, StoreError, StoreSummary, validate_store

PROBE_SECONDS = 20.0  # what opening and checking a store in the child may take


class ProbeTimeout(InputError):
    """The child did not finish checking a store in time: a damaged file, or a stalled file system."""


def probe_store(path: str | os.PathLike, seconds: float = PROBE_SECONDS) -> StoreSummary:
    """`validate_store(path)`, run in a child process that may take at most `seconds`.

    Returns the store's summary. Raises StoreError (an InputError) for a file that is not
    a valid store, and also when the child crashed on it (killed by a signal), and
    ProbeTimeout (an InputError, not a StoreError) when the child did not finish in time.
    """
    path = Path(path)
    if not sys.platform.startswith("linux"):
        return validate_store(path)
    read_end, write_end = os.pipe()  # closes when the child ends, however it ends
    try:
        pid = os.fork()
    except OSError:  # no process to spare: check in this process only
        os.close(read_end)
        os.close(write_end)
        return validate_store(path)
    if pid == 0:
        os.close(read_end)
        _check_in_child(path, write_end)  # never returns
    os.close(write_end)
    report = None
    try:
        report = _read_to_end(read_end, seconds)
    finally:  # also on Ctrl-C: never leave the child behind
        os.close(read_end)
        if report is None:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    if report is None:
        raise ProbeTimeout(f"{path}: did not open within {seconds:g} s; the file may be damaged or on a stalled file system")
    if os.WIFSIGNALED(status):
        raise StoreError(f"{path}: damaged HDF5 file (the HDF5 library crashed reading it: signal {os.WTERMSIG(status)})")
    if not report:  # the child met something other than bad input (a bug, its memory limit): repeat it here
        return validate_store(path)
    found = json.loads(report)
    if "error" in found:
        raise StoreError(found["error"])
    return StoreSummary(path, found["num_images"], found["image_size"], ClassTable(**found["classes"]),
                        found["sources"], found["provenance"], found["compression"], found["traditional_of"])


def _check_in_child(path: Path, pipe: int) -> None:
    """In the child: validate the store, write the outcome as JSON to `pipe`, and exit.

    Leaves with os._exit, so none of the parent's exit handlers run twice. Writes nothing
    if validation failed with anything but an InputError: the parent then repeats it.
    """
    try:
        _child_limits()
        try:
            summary = validate_store(path)
            found = {"num_images": summary.num_images, "image_size": summary.image_size,
                     "classes": summary.classes.to_dict(), "sources": summary.sources,
                     "provenance": summary.provenance, "compression": summary.compression,
                     "traditional_of": summary.traditional_of}
        except InputError as error:  # every problem validate_store finds is a StoreError
            found = {"error": str(error)}
        with open(pipe, "wb") as handle:
            handle.write(json.dumps(found).encode())  # ASCII: a lone surrogate in a name still encodes
    except BaseException:  # noqa: BLE001 - the parent repeats the check and reports what fails
        pass
    os._exit(0)


def _read_to_end(pipe: int, seconds: float) -> bytes | None:
    """All that is written to `pipe` until its writer closes it; None if that takes over `seconds`."""
    deadline = time.monotonic() + seconds
    chunks = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([pipe], [], [], left)[0]:
            return None
        chunk = os.read(pipe, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _child_limits() -> None:
    """In the probe child: no core file, no fault dump, and at most 2 GiB more memory."""
    import faulthandler
    import resource

    faulthandler.disable()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        with open("/proc/self/statm") as handle:
            mapped = int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    wanted = mapped + (2 << 30)
    if soft == resource.RLIM_INFINITY or wanted < soft:
        resource.setrlimit(resource.RLIMIT_AS, (wanted, hard))
