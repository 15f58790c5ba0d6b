"""The HTML of a report page: sections, tables, embedded pictures, the grid slider, the file,
and how the page and stderr speak of what its files hold but it cannot use (`shown`, `warn_of`).

A page is one file with everything in it: pictures as base64 data URIs, charts as inline
SVG (svg.py), a style sheet and a dozen lines of plain script for the slider. Its
Content-Security-Policy allows nothing from outside (no network, no other file), so a
page that would need anything else shows it as an error in the browser's console rather
than quietly depending on it. Without script the grids are still all there, in the strip.
"""

from __future__ import annotations

import base64
import re
import sys
from html import escape
from pathlib import Path
from typing import Sequence

from ..data_tools_api import atomic_output

_SURROGATE = re.compile("[\ud800-\udfff]")
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1100px; padding: 0 16px 48px; color: #222; }
h1 { font-size: 22px; margin: 20px 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; }
h3 { font-size: 15px; margin: 16px 0 6px; }
table { border-collapse: collapse; margin: 6px 0; } td, th { padding: 2px 10px 2px 0; text-align: left; vertical-align: top; }
th { font-weight: 600; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.changed td { font-weight: 600; } .muted, .notes { color: #666; }
.config-sections { display: flex; flex-wrap: wrap; gap: 0 40px; } table.summary td.num { text-align: left; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; } svg.chart { width: 540px; max-width: 100%; height: auto; }
svg text { font: 11px system-ui, sans-serif; } svg text:not(.legend) { fill: #444; } svg .chart-title { font-weight: 600; fill: #222; }
.strip { display: flex; gap: 8px; overflow-x: auto; padding: 4px 0; }
figure { margin: 0; text-align: center; } figure.grid { cursor: pointer; border: 2px solid transparent; }
figure.grid.selected { border-color: #1f77b4; } figure.grid img { height: 120px; }
img { image-rendering: pixelated; } img.grid-view { height: min(560px, 75vh); max-width: 100%; object-fit: contain; }
img.best-worst, img.compare, img.seed-samples { max-width: 100%; } figure.seed { margin: 8px 0; text-align: left; }
.scroll { max-height: 420px; overflow-y: auto; } pre { background: #f6f6f6; padding: 8px; overflow-x: auto; font-size: 12px; }
"""

SLIDER_SCRIPT = """
document.querySelectorAll('.grid-viewer').forEach(function (viewer) {
  var slider = viewer.querySelector('input.grid-slider'), view = viewer.querySelector('img.grid-view');
  var caption = viewer.querySelector('.grid-view-caption'), figures = viewer.querySelectorAll('figure.grid');
  function show(index) {
    figures.forEach(function (figure, i) { figure.classList.toggle('selected', i === index); });
    view.src = figures[index].querySelector('img').src;
    caption.textContent = figures[index].querySelector('figcaption').textContent;
  }
  slider.addEventListener('input', function () { show(Number(slider.value)); });
  figures.forEach(function (figure, i) { figure.addEventListener('click', function () { slider.value = i; show(i); }); });
  show(Number(slider.value));
});
"""


def html_page(title: str, sections: Sequence[str], subtitle: str = "") -> str:
    """A whole page: head (policy, style), a heading, the sections, the slider script."""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link rel="icon" href="data:,"><title>{escape(title)}</title><style>{STYLE}</style></head>\n'
            f'<body><h1>{escape(title)}</h1>{f"<p class=muted>{escape(subtitle)}</p>" if subtitle else ""}\n'
            + "\n".join(sections) + f"\n<script>{SLIDER_SCRIPT}</script></body></html>\n")


def section(title: str, *parts: str, anchor: str = "") -> str:
    return f'<section{f" id={anchor!r}" if anchor else ""}><h2>{escape(title)}</h2>{"".join(parts)}</section>'


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], css_class: str = "", changed: Sequence[bool] = ()) -> str:
    """A table; numbers right-aligned and shown with 4 significant digits; rows flagged in `changed` in bold."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for index, row in enumerate(rows):
        flag = ' class="changed"' if index < len(changed) and changed[index] else ""
        body.append(f"<tr{flag}>" + "".join(_cell(value) for value in row) + "</tr>")
    return f'<table class="{css_class}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def picture(png: bytes, alt: str, css_class: str = "") -> str:
    """An <img> of PNG bytes, embedded."""
    return f'<img class="{css_class}" alt="{escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def grid_viewer(grids: Sequence[tuple[str, bytes]]) -> str:
    """A large view of one grid chosen by a slider (the newest at first), above a strip of all of them."""
    if not grids:
        return '<p class="muted">no sample grid yet</p>'
    strip = "".join(f'<figure class="grid">{picture(png, caption)}<figcaption>{escape(caption)}</figcaption></figure>'
                    for caption, png in grids)
    last = len(grids) - 1
    return (f'<div class="grid-viewer"><label>grid <input class="grid-slider" type="range" min="0" max="{last}" value="{last}" '
            f'step="1"> <span class="grid-view-caption">{escape(grids[-1][0])}</span></label>'
            f'<div><img class="grid-view" alt="the chosen grid"></div><div class="strip">{strip}</div></div>')


def notes(lines: Sequence[str]) -> str:
    return f'<ul class="notes">{"".join(f"<li>{escape(line)}</li>" for line in lines)}</ul>' if lines else ""


def shown(value: object, limit: int = 40) -> str:
    """A value read from a file, as a note quotes it: strings quoted, booleans as JSON writes them, cut at `limit`."""
    text = str(value).lower() if isinstance(value, bool) else repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def warn_of(problems: Sequence[str], where: str) -> None:
    """One line on stderr when a page left out what its files hold but it cannot use: how many, and the first.

    The page lists them all; the line is for whoever runs the command without opening it.
    """
    if problems:
        count = f"{len(problems)} thing{'s' if len(problems) > 1 else ''}"
        more = "; …" if len(problems) > 1 else ""
        print(f"cond-lsgan: warning: {count} {where} could not be used; the page notes them: {problems[0]}{more}",
              file=sys.stderr)


def write_page(text: str, out: str | Path) -> Path:
    """Write the page at `out` (UTF-8) under a temporary name first, so a reader never sees half of it.

    A lone surrogate (JSON's "\\ud800", a file name that is not UTF-8) has no UTF-8 form: it
    is written as U+FFFD rather than failing the page.
    """
    out = Path(out)
    with atomic_output(out) as temporary:
        temporary.write_text(_SURROGATE.sub("\ufffd", text), encoding="utf-8")
    return out


def _cell(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return f"<td>{'' if value is None else escape(str(value).lower())}</td>"
    if isinstance(value, float):
        return f'<td class="num">{value:.4g}</td>'
    if isinstance(value, int):
        return f'<td class="num">{value:,}</td>'
    return f"<td>{escape(str(value))}</td>"
