"""`cond-lsgan report RUN [--evaluation report.json] --out report.html`: the page of one run.

Top to bottom: where the run stands (step, checkpoints, what was left out and why), the
loss and images/s curves from metrics.jsonl, the sample grids over time (a slider over
them and a strip of all of them), the resolved config with the settings that differ from
the defaults in bold, the end of the log, and, given an evaluation report, its sections
(evaluation.py). It reads the run as it is at that moment (run_files.py), so it can be
written again and again while the run goes on.
"""

from __future__ import annotations

import time
from html import escape
from pathlib import Path

from ..config import Config
from ..run_folder import METRICS_FILE
from ..tensorboard_log import TENSORBOARD_DIR
from .evaluation import evaluation_sections, load_evaluation
from .page import grid_viewer, html_page, notes, section, table, write_page
from .run_files import RunFiles, read_run
from .svg import Series, line_chart


def write_run_report(run_dir: str | Path, out: str | Path, evaluation: str | Path | None = None) -> Path:
    """Read the run (and the evaluation report, if given), then write the page to `out`; returns `out`."""
    run = read_run(run_dir)
    evaluated = load_evaluation(evaluation) if evaluation is not None else None
    sections = [section("Run", _status(run), notes(run.notes), anchor="run"),
                section("Curves", _curves(run), anchor="curves"),
                section("Sample grids", f'<p class="muted">fixed noise, EMA generator; {run.grid_count} in samples/</p>',
                        grid_viewer([(f"step {step:,}", png) for step, png in run.grids]), anchor="grids"),
                section("Config", _config(run), anchor="config"),
                section("Log", f"<pre>{escape(chr(10).join(run.log_tail))}</pre>" if run.log_tail
                        else '<p class="muted">no log yet</p>', anchor="log")]
    if evaluated is not None:
        sections += evaluation_sections(*evaluated, origin=str(evaluation))
    return write_page(html_page(f"{run.name}: training run", sections, subtitle=f"{run.path} as of {time.strftime('%Y-%m-%d %H:%M:%S')}"), out)


def _status(run: RunFiles) -> str:
    steps = (run.config or {}).get("train", {}).get("steps")
    reached = max([run.metrics[-1]["step"] if run.metrics else 0, *run.checkpoints, *(step for step, _ in run.grids)], default=0)
    last = run.metrics[-1] if run.metrics else {}
    rows = [("step", f"{reached:,} of {steps:,}" if isinstance(steps, int) else f"{reached:,}"),
            ("metrics lines", f"{len(run.metrics):,}"),
            ("last logged", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last["time"])) if isinstance(last.get("time"), (int, float)) else None),
            ("checkpoints", ", ".join(f"step {step:,}" for step in run.checkpoints) or "none yet"),
            ("sample grids", f"{run.grid_count:,}"),
            ("TensorBoard events", f"tensorboard --logdir {run.path / TENSORBOARD_DIR}" if (run.path / TENSORBOARD_DIR).is_dir() else None)]
    return table(("", ""), [(name, value) for name, value in rows if value is not None], "status")


def _curves(run: RunFiles) -> str:
    steps = [record["step"] for record in run.metrics]

    def values(key: str) -> list:
        return [record.get(key) for record in run.metrics]
    charts = [line_chart("losses", [Series("D loss", steps, values("d_loss")), Series("G loss", steps, values("g_loss"))],
                         "step", "mean loss over the interval"),
              line_chart("speed", [Series("images/s", steps, values("images_per_s"))], "step", "images/s")]
    bad = values("bad_steps")
    if any(isinstance(count, int) and count > 0 for count in bad):
        charts.append(line_chart("non-finite steps", [Series("skipped steps", steps, bad)], "step", "steps skipped in the interval"))
    empty = "" if run.metrics else f'<p class="muted">no line in {METRICS_FILE} yet</p>'
    return empty + f'<div class="charts">{"".join(charts)}</div>'


def _config(run: RunFiles) -> str:
    if run.config is None:
        return '<p class="muted">no config.json yet (the run writes it once it has read its data)</p>'
    defaults = Config().to_dict()
    parts = []
    for name, values in run.config.items():
        if not isinstance(values, dict):
            continue
        known = defaults.get(name, {})
        keys = list(values)
        parts.append(f"<div><h3>[{escape(name)}]</h3>" + table(
            ("key", "value", "default"), [(key, _shown(values[key]), _shown(known.get(key, ""))) for key in keys], "config",
            changed=[key in known and values[key] != known[key] for key in keys]) + "</div>")
    return f'<p class="muted">settings that differ from the defaults in bold</p><div class="config-sections">{"".join(parts)}</div>'


def _shown(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
