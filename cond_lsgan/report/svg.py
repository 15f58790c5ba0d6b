"""Line and scatter charts as inline SVG strings, for the report pages.

Drawn here rather than by a plotting library so that a page needs nothing but a browser
(no script, no fonts or files to fetch) and the report needs no extra package. Each chart
is an `<svg class="chart">`, each line a `<path class="series">`; points carry a `<title>`,
which browsers show on hover. Long series are reduced to MAX_POINTS bucket means, so a
run of a million steps still draws a light page. A value is drawn only if `drawable`: a
number (not a bool) within ±MAX_MAGNITUDE; anything else read from a file (a string, NaN,
an integer of 400 digits, 1.7e308) is a gap, never an exception, and callers that want to
say so count the same test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Sequence

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 60, 16, 30, 42  # margins around the plot area
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
MAX_POINTS = 1500
MARKED_POINTS = 80  # series up to this long get a dot (with a hover title) at every point
MAX_MAGNITUDE = 1e300  # an axis spans twice the largest value: past ~9e307 that overflows to infinity


@dataclass
class Series:
    name: str
    x: Sequence[float]
    y: Sequence[float | None]  # None: no value there (a gap in the line)


def line_chart(title: str, series: Sequence[Series], x_label: str, y_label: str) -> str:
    """One chart of several lines over a shared x axis; a chart saying "no data yet" when there are no values."""
    series = [_reduced(Series(s.name, [float(x) if drawable(x) else None for x in s.x],
                              [float(y) if drawable(y) and drawable(x) else None for x, y in zip(s.x, s.y)])) for s in series]
    xs = [x for s in series for x, y in zip(s.x, s.y) if y is not None]
    ys = [y for s in series for y in s.y if y is not None]
    if not ys:
        return _frame(title, x_label, y_label, None, None, '<text class="empty" x="50%" y="55%" text-anchor="middle">no data yet</text>')
    x_axis, y_axis = _Axis(min(xs), max(xs), LEFT, WIDTH - RIGHT), _Axis(min(ys), max(ys), HEIGHT - BOTTOM, TOP)
    body = []
    for index, line in enumerate(series):
        colour = COLOURS[index % len(COLOURS)]
        pieces, pen_down = [], False
        for x, y in zip(line.x, line.y):
            if y is None:
                pen_down = False
                continue
            pieces.append(f"{'L' if pen_down else 'M'}{x_axis.place(x):.1f},{y_axis.place(y):.1f}")
            pen_down = True
        body.append(f'<path class="series" data-series="{escape(line.name)}" d="{" ".join(pieces)}" fill="none" '
                    f'stroke="{colour}" stroke-width="1.6"><title>{escape(line.name)}</title></path>')
        if len(line.x) <= MARKED_POINTS:
            body += [f'<circle class="point" cx="{x_axis.place(x):.1f}" cy="{y_axis.place(y):.1f}" r="2.5" fill="{colour}">'
                     f'<title>{escape(line.name)} at {_number(x)}: {_number(y)}</title></circle>'
                     for x, y in zip(line.x, line.y) if y is not None]
    legend, x = [], LEFT + 8
    for index, line in enumerate(series):
        legend.append(f'<text x="{x}" y="{TOP - 8}" fill="{COLOURS[index % len(COLOURS)]}" class="legend">&#9632; {escape(line.name)}</text>')
        x += 6.5 * len(line.name) + 28  # about the width of 11 px text
    return _frame(title, x_label, y_label, x_axis, y_axis, "".join(body + legend))


def scatter_chart(title: str, points: Sequence[tuple[float, float, str]], x_label: str, y_label: str) -> str:
    """Dots at (x, y), each titled with its label (shown on hover)."""
    points = [(float(x), float(y), label) for x, y, label in points if drawable(x) and drawable(y)]
    if not points:
        return _frame(title, x_label, y_label, None, None, '<text class="empty" x="50%" y="55%" text-anchor="middle">no data</text>')
    x_axis = _Axis(min(p[0] for p in points), max(p[0] for p in points), LEFT, WIDTH - RIGHT)
    y_axis = _Axis(min(p[1] for p in points), max(p[1] for p in points), HEIGHT - BOTTOM, TOP)
    dots = [f'<circle class="point" cx="{x_axis.place(x):.1f}" cy="{y_axis.place(y):.1f}" r="3" fill="{COLOURS[0]}" '
            f'fill-opacity="0.6"><title>{escape(label)}: {_number(x)}, {_number(y)}</title></circle>' for x, y, label in points]
    return _frame(title, x_label, y_label, x_axis, y_axis, "".join(dots))


class _Axis:
    """A linear map from data values to pixels, over a range widened to round tick values."""

    def __init__(self, low: float, high: float, start: float, end: float) -> None:
        if high - low <= 1e-12 * max(1.0, abs(high)):
            pad = abs(high) * 0.1 or 1.0
            low, high = low - pad, high + pad
        self.step = _tick_step((high - low) / 5)
        self.low, self.high = math.floor(low / self.step) * self.step, math.ceil(high / self.step) * self.step
        self.start, self.end = start, end

    def place(self, value: float) -> float:
        return self.start + (value - self.low) / (self.high - self.low) * (self.end - self.start)

    def ticks(self) -> list[float]:
        count = round((self.high - self.low) / self.step)
        return [self.low + i * self.step for i in range(count + 1)]


def _frame(title: str, x_label: str, y_label: str, x_axis: _Axis | None, y_axis: _Axis | None, body: str) -> str:
    parts = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="{escape(title)}"><title>{escape(title)}</title>',
             f'<rect x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" height="{HEIGHT - TOP - BOTTOM}" fill="#fafafa" stroke="#ccc"/>']
    if x_axis and y_axis:
        for value in x_axis.ticks():
            x = x_axis.place(value)
            parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{HEIGHT - BOTTOM}" stroke="#eee"/>'
                         f'<text class="tick" x="{x:.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle">{_number(value)}</text>')
        for value in y_axis.ticks():
            y = y_axis.place(value)
            parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
                         f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_number(value)}</text>')
    parts += [body,
              f'<text class="label" x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 6}" text-anchor="middle">{escape(x_label)}</text>',
              f'<text class="label" transform="translate(14 {(TOP + HEIGHT - BOTTOM) / 2}) rotate(-90)" '
              f'text-anchor="middle">{escape(y_label)}</text>',
              f'<text class="chart-title" x="{WIDTH - RIGHT}" y="{TOP - 8}" text-anchor="end">{escape(title)}</text></svg>']
    return "".join(parts)


def _tick_step(rough: float) -> float:
    """1, 2 or 5 times a power of ten, at least `rough`."""
    power = 10 ** math.floor(math.log10(rough))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= rough * (1 - 1e-9))


def _reduced(series: Series) -> Series:
    """At most MAX_POINTS points: means of consecutive buckets (a bucket without values stays a gap)."""
    if len(series.x) <= MAX_POINTS:
        return series
    size = math.ceil(len(series.x) / MAX_POINTS)
    xs, ys = [], []
    for start in range(0, len(series.x), size):
        bucket = [(x, y) for x, y in zip(series.x[start:start + size], series.y[start:start + size]) if y is not None]
        xs.append(sum(x for x, _ in bucket) / len(bucket) if bucket else None)
        ys.append(sum(y for _, y in bucket) / len(bucket) if bucket else None)
    return Series(series.name, xs, ys)


def drawable(value: object) -> bool:
    """A number a chart can place: not a bool, finite and within ±MAX_MAGNITUDE (an int too large for a float is not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return abs(float(value)) <= MAX_MAGNITUDE  # False for NaN and inf; OverflowError for an int past a float
    except OverflowError:
        return False


def _number(value: float) -> str:
    return f"{value:,.0f}" if 1000 <= abs(value) < 1e15 and float(value).is_integer() else f"{value:.4g}"
