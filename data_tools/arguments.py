"""Command-line parsing shared by both CLIs: one-line errors and numbers checked where they are parsed.

argparse prints its whole usage block above an error; a user who typed `--size x` needs
the one line that says what is wrong and where to look, like every other error of ours:
`OneLineParser` prints `data-tools: error: argument --size: invalid int value: 'x' (see
'data-tools render --help')` and exits with 2. Its subcommands' parsers are of the same class.

The number types refuse what no option can mean, before any work: `finite_float` a NaN
or an infinity (which compare false with every bound, so a range check alone lets them
through: `--outlier-z nan` once turned outlier detection off), `seed_int` a seed outside
[0, 2^63), the range torch and numpy seed from. Ranges of one option stay with the code
that uses the value.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import NoReturn

from .errors import EXIT_BAD_INPUT

SEED_LIMIT = 2**63  # seeds are in [0, SEED_LIMIT)


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and exit code 2, with the --help hint."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.split()[0]  # a subcommand's prog is "data-tools render": errors start like every other one
        print(f"{command}: error: {message} (see '{self.prog} --help')", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


def finite_float(text: str) -> float:
    """argparse type: a float that is neither NaN nor infinite."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def seed_int(text: str) -> int:
    """argparse type: a seed, an integer in [0, 2^63)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"a seed must be between 0 and 2^63 - 1, got {text}")
    return value
