"""Write a file under a temporary name and rename it into place only when complete.

Every tool that writes an output (glyph stores, checkpoints, grids) goes through
`atomic_output`, so an interrupted or failed run never leaves a half-written file at the
destination and never replaces a good one. `os.replace` is atomic on POSIX and Windows
when both names are in the same directory, which is why the temporary file sits beside
the destination. A write that fails because the location cannot take the file (disk
full, file size limit, read-only file system, no permission) is an `InputError` naming
the destination, and the temporary file is removed. Messages name the user's path, never
the temporary one: an `InputError` from the body that names the temporary file (a
`StoreWriter` writing it, as `split` does) is raised again with the destination instead.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import InputError, find_write_failure


@contextlib.contextmanager
def atomic_output(destination: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `destination`; rename it there if the body succeeds."""
    destination = Path(destination)
    folder = make_parent_folder(destination)
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".tmp", dir=folder)
    except OSError as error:
        raise write_error(destination, error) from None
    os.close(handle)
    temporary = Path(temporary)
    os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
    try:
        try:
            yield temporary
            _fsync(temporary)
        except InputError as error:  # e.g. a StoreWriter writing the temporary file: name the user's path, not ours
            if str(temporary) not in str(error):
                raise
            raise InputError(str(error).replace(str(temporary), str(destination))) from None
        except Exception as error:  # a full disk, a file size limit: the user's problem, not a bug
            failure = find_write_failure(error)
            if failure is None:
                raise
            raise write_error(destination, failure) from None
        try:
            os.replace(temporary, destination)
        except OSError as error:  # e.g. the destination is a folder: bad input, not a bug
            raise write_error(destination, error) from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_error(destination: str | os.PathLike, error: OSError) -> InputError:
    """The one-line InputError for an OSError met writing `destination`."""
    reason = os.strerror(error.errno) if error.errno else (str(error).splitlines() or ["unknown error"])[0]
    return InputError(f"cannot write {destination}: {reason}")


def make_parent_folder(destination: str | os.PathLike) -> Path:
    """Create the folder `destination` goes in (and its parents); InputError if that cannot be done."""
    destination = Path(destination)
    folder = destination.parent
    for parent in (folder, *folder.parents):  # a file where a folder is needed
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"cannot write {destination}: {parent} is a file, not a folder")
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise write_error(destination, error) from None
    return folder


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync(path: Path) -> None:
    """Flush the file's bytes to disk before the rename makes it visible."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
