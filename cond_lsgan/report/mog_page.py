"""`experiment mog --html PAGE`: the mixture-of-Gaussians folder as one self-contained page.

What `experiment mog` leaves in its folder (evaluation/mog.py: summary.json, compare.png,
<loss>/seed_<k>/samples.png), side by side: per loss, the modes covered and the
high-quality share at the end (mean and spread over seeds); their course over the steps
at the radius of the paper's figure; the comparison figure; and each seed's density
pictures. Like the run report it embeds everything and loads nothing.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from ..data_tools_api import InputError
from .page import html_page, picture, section, table, write_page
from .svg import Series, line_chart

RADIUS = "0.1"  # the radius compare.png draws around the modes


def write_mog_page(folder: str | Path, out: str | Path) -> Path:
    """The page of an `experiment mog` folder (after its summary.json was written) at `out`."""
    folder = Path(folder)
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read {folder / 'summary.json'}: {error}") from None
    losses = summary.get("losses", {})
    radius = RADIUS if RADIUS in map(str, summary.get("radii", [])) else str(summary["radii"][len(summary["radii"]) // 2])
    rows = []
    for loss, result in losses.items():
        end = result["by_radius"][radius][str(result["steps"][-1])]
        rows.append((result["name"], len(result["seeds"]), result["steps"][-1],
                     f"{end['modes_covered']['mean']:.2f} ± {end['modes_covered']['std']:.2f}",
                     f"{end['all_modes_share']:.0%}", f"{end['high_quality']['mean']:.1%}"))
    charts = [line_chart(f"modes covered (r = {radius})", _series(losses, radius, "modes_covered"), "step", "modes (mean over seeds)"),
              line_chart(f"high quality (r = {radius})", _series(losses, radius, "high_quality"), "step", "share within r of a mode")]
    figure = folder / "compare.png"
    seeds = [_seed_figure(path, f"{result['name']}, seed {seed}") for loss, result in losses.items() for seed in result["seeds"]
             if (path := folder / loss / f"seed_{seed}" / "samples.png").is_file()]
    sections = [
        section("Experiment", table(("loss", "seeds", "steps", f"modes covered at the end (r = {radius}, of {summary['modes']})",
                                     "seeds covering all", "high quality"), rows, "summary"), anchor="summary"),
        section("Curves", f'<div class="charts">{"".join(charts)}</div>', anchor="curves"),
        section("The losses side by side", picture(figure.read_bytes(), "comparison figure", "compare") if figure.is_file()
                else '<p class="muted">no compare.png</p>', anchor="figure"),
        section("Each seed's samples over the steps", "".join(seeds), anchor="seeds"),
    ]
    return write_page(html_page(f"mixture of {summary['modes']} Gaussians: {folder.resolve().name}", sections), out)


def _seed_figure(path: Path, caption: str) -> str:
    return f'<figure class="seed">{picture(path.read_bytes(), caption, "seed-samples")}<figcaption>{escape(caption)}</figcaption></figure>'


def _series(losses: dict, radius: str, key: str) -> list[Series]:
    return [Series(result["name"], result["steps"], [result["by_radius"][radius][str(step)][key]["mean"] for step in result["steps"]])
            for result in losses.values()]
