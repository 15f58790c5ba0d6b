"""The one exception type for bad user input.

Library code raises `InputError` with a message a user can act on; the CLIs turn it
into one line on stderr and exit code 2 (see `run_cli`). So does a write that fails for
want of room (disk full, quota, file size limit) or on a read-only file system, wherever
it happens: that is the machine's state, not a bug. Anything else that escapes is a
bug and keeps its traceback.

This module imports nothing from the package, so every other module can import it.
"""

from __future__ import annotations

import errno
import os
import sys
from typing import Callable

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class InputError(Exception):
    """A file, value or option the user gave us is missing, malformed or inconsistent."""


def run_cli(main: Callable[[], int | None], prog: str) -> int:
    """Run a CLI body, mapping `InputError` to one stderr line and exit code 2."""
    try:
        return main() or 0
    except InputError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as error:
        failure = find_write_failure(error)
        if failure is None:
            raise
        where = f" {failure.filename}" if failure.filename else ""
        print(f"{prog}: error: cannot write{where}: {os.strerror(failure.errno)}", file=sys.stderr)
        return EXIT_BAD_INPUT


# Errors of writing that mean "this location cannot take the output" rather than a bug.
WRITE_FAILURES = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


def find_write_failure(error: BaseException) -> OSError | None:
    """The OSError of a failed write (disk full, file too large, read-only) behind `error`, if any.

    Libraries wrap it in their own exceptions (torch.save raises a RuntimeError whose
    context is the OSError of the write), so the chain of causes is followed. An
    InputError already names the problem and is left alone.
    """
    seen: set[int] = set()
    while error is not None and id(error) not in seen and not isinstance(error, InputError):
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in WRITE_FAILURES:
            return error
        error = error.__cause__ if error.__cause__ is not None else (None if error.__suppress_context__ else error.__context__)
    return None
