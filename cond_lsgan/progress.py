"""Progress of long commands: an estimate of the run time first, then a bar or plain lines.

Every experiment first prints an estimate of its run time (measured on its own first
steps, so it reflects this machine and its current load), then shows a tqdm bar on a
terminal, or a plain line every so often when stderr is a file or pipe (a background
run's log stays readable).

Two jobs share the terminal half (`terminal_bar`, `print_line`): `Progress` for an
experiment (an estimate, then a bar or a line every so often), and a training run's log
(training/loop.py's `RunLog`), whose lines are also log.txt and whose bar starts where a
resumed run left off.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from tqdm import tqdm


def format_duration(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def terminal_bar(total: int, **options: Any) -> tqdm | None:
    """A tqdm bar when stderr is a terminal; None when it is a file or pipe, where plain lines read better."""
    return tqdm(total=total, dynamic_ncols=True, **options) if sys.stderr.isatty() else None


def print_line(text: str, bar: tqdm | None) -> None:
    """`text` as a line of its own: above the bar if there is one, else on stderr."""
    if bar:
        bar.write(text)
    else:
        print(text, file=sys.stderr, flush=True)


class Progress:
    """A tqdm bar on a terminal; otherwise a line on stderr every `every` units."""

    def __init__(self, total: int, label: str, unit: str = "step", every: int | None = None) -> None:
        self.total, self.label, self.unit = total, label, unit
        self.every = every or max(1, total // 10)
        self.done = 0
        self.start = time.perf_counter()
        self.bar = terminal_bar(total, desc=label, unit=unit)

    def line(self, text: str) -> None:
        print_line(text, self.bar)

    def estimate(self, done: int, seconds: float, extra: float = 0.0, what: str = "") -> float:
        """Print the estimated total run time from `done` units measured in `seconds`."""
        rate = done / max(seconds, 1e-9)
        total = self.total / rate + extra
        self.line(f"{self.label}: estimated run time {format_duration(total)} "
                  f"({rate:.1f} {self.unit}s/s measured on the first {done}{what})")
        return total

    def update(self, count: int = 1, **status: Any) -> None:
        before, self.done = self.done, self.done + count
        if self.bar:
            self.bar.update(count)
            if status:
                self.bar.set_postfix(status)
        elif self.done // self.every != before // self.every or self.done == self.total:
            elapsed = time.perf_counter() - self.start
            left = elapsed / self.done * (self.total - self.done) if self.done else 0.0
            extra = "".join(f" {k} {v}" for k, v in status.items())
            self.line(f"{self.label}: {self.done}/{self.total} {self.unit}s, {format_duration(elapsed)} elapsed, "
                      f"about {format_duration(left)} left{extra}")

    def close(self) -> None:
        if self.bar:
            self.bar.close()
