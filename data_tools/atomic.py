"""Write a file under a temporary name and rename it into place only when complete.

Every tool that writes an output (glyph stores, checkpoints, grids) goes through
`atomic_output`, so an interrupted or failed run never leaves a half-written file at the
destination and never replaces a good one. `os.replace` is atomic on POSIX and Windows
when both names are in the same directory, which is why the temporary file sits beside
the destination.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import InputError


@contextlib.contextmanager
def atomic_output(destination: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `destination`; rename it there if the body succeeds."""
    destination = Path(destination)
    folder = destination.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".tmp", dir=folder)
    except OSError as error:
        raise InputError(f"cannot write {destination}: {error.strerror or error}") from None
    os.close(handle)
    temporary = Path(temporary)
    os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
    try:
        yield temporary
        _fsync(temporary)
        try:
            os.replace(temporary, destination)
        except OSError as error:  # e.g. the destination is a folder: bad input, not a bug
            raise InputError(f"cannot write {destination}: {error.strerror or error}") from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync(path: Path) -> None:
    """Flush the file's bytes to disk before the rename makes it visible."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
