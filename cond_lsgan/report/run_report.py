"""`cond-lsgan report RUN [--evaluation report.json] --out report.html`: the page of one run.

Top to bottom: where the run stands (step, checkpoints, what was left out and why), the
loss and images/s curves from metrics.jsonl, the sample grids over time (a slider over
them and a strip of all of them), the resolved config with the settings that differ from
the defaults in bold, the end of the log, and, given an evaluation report, its sections
(evaluation.py). It reads the run as it is at that moment (run_files.py), so it can be
written again and again while the run goes on.

A value the page cannot use (a loss of 1.7e308 or NaN, a time past the calendar, a config
section that is no table, a setting not of its default's type) is left out of the chart
or table it belongs to and listed under Run, with the other problems of the run's files;
one warning line on stderr says how many there are, so a script that writes the page
learns of them without opening it. The page is still written, exit code 0.
"""

from __future__ import annotations

import math
import time
from html import escape
from pathlib import Path

from ..config import Config
from ..training.run_folder import CONFIG_FILE, METRICS_FILE
from ..training.tensorboard_log import TENSORBOARD_DIR
from .evaluation import evaluation_sections, load_evaluation
from .page import grid_viewer, html_page, notes, section, shown, table, warn_of, write_page
from .run_files import RunFiles, read_run
from .svg import MAX_MAGNITUDE, Series, drawable, line_chart

CURVES = ("d_loss", "g_loss", "images_per_s", "bad_steps")  # the metrics drawn
EXAMPLES = 8  # values quoted in a note about values left out


def write_run_report(run_dir: str | Path, out: str | Path, evaluation: str | Path | None = None) -> Path:
    """Read the run (and the evaluation report, if given), then write the page to `out`; returns `out`."""
    run = read_run(run_dir)
    evaluated = load_evaluation(evaluation) if evaluation is not None else None
    problems = list(run.problems)  # and those found drawing, below
    curves, config, status = _curves(run, problems), _config(run, problems), _status(run, problems)
    sections = [section("Run", status, notes(run.notes + problems), anchor="run"),
                section("Curves", curves, anchor="curves"),
                section("Sample grids", f'<p class="muted">fixed noise, EMA generator; {run.grid_count} in samples/</p>',
                        grid_viewer([(f"step {step:,}", png) for step, png in run.grids]), anchor="grids"),
                section("Config", config, anchor="config"),
                section("Log", f"<pre>{escape(chr(10).join(run.log_tail))}</pre>" if run.log_tail
                        else '<p class="muted">no log yet</p>', anchor="log")]
    if evaluated is not None:
        evaluation_problems: list[str] = []
        sections += evaluation_sections(*evaluated, origin=str(evaluation), problems=evaluation_problems)
        problems += evaluation_problems
    written = write_page(html_page(f"{run.name}: training run", sections,
                                   subtitle=f"{run.path} as of {time.strftime('%Y-%m-%d %H:%M:%S')}"), out)
    warn_of(problems, "in the run's files" if evaluated is None else "in the run's files and the evaluation report")
    return written



def _status(run: RunFiles, problems: list[str]) -> str:
    train = (run.config or {}).get("train")
    steps = train.get("steps") if isinstance(train, dict) else None
    reached = max([run.metrics[-1]["step"] if run.metrics else 0, *run.checkpoints, *(step for step, _ in run.grids)], default=0)
    last = run.metrics[-1] if run.metrics else {}
    rows = [("step", f"{reached:,} of {steps:,}" if _is_count(steps) else f"{reached:,}"),
            ("metrics lines", f"{len(run.metrics):,}"),
            ("last logged", _when(last.get("time"), problems)),
            ("checkpoints", ", ".join(f"step {step:,}" for step in run.checkpoints) or "none yet"),
            ("sample grids", f"{run.grid_count:,}"),
            ("TensorBoard events", f"tensorboard --logdir {run.path / TENSORBOARD_DIR}" if (run.path / TENSORBOARD_DIR).is_dir() else None)]
    return table(("", ""), [(name, value) for name, value in rows if value is not None], "status")


def _when(value: object, problems: list[str]) -> str | None:
    """The time of the last metrics line as a date; None (and a problem) if it is none."""
    if value is None:
        return None
    try:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))
    except (ValueError, OverflowError, OSError):  # not a number, NaN, past time_t or the platform's calendar
        problems.append(f"the time of the last metrics line ({shown(value)}) is not a time: not shown")
        return None


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _curves(run: RunFiles, problems: list[str]) -> str:
    steps = [record["step"] for record in run.metrics]
    left_out = [f"{key} at step {record['step']:,}: {shown(record[key], 20)}" for record in run.metrics for key in CURVES
                if record.get(key) is not None and not drawable(record[key])]  # null: an interval without good steps
    if left_out:
        problems.append(f"{len(left_out)} value{'s' if len(left_out) > 1 else ''} of {METRICS_FILE} left out of the curves "
                        f"(not finite numbers within ±{MAX_MAGNITUDE:g}): {', '.join(left_out[:EXAMPLES])}"
                        + (", …" if len(left_out) > EXAMPLES else ""))

    def values(key: str) -> list:
        return [record.get(key) for record in run.metrics]
    charts = [line_chart("losses", [Series("D loss", steps, values("d_loss")), Series("G loss", steps, values("g_loss"))],
                         "step", "mean loss over the interval"),
              line_chart("speed", [Series("images/s", steps, values("images_per_s"))], "step", "images/s")]
    bad = values("bad_steps")
    if any(drawable(count) and count > 0 for count in bad):
        charts.append(line_chart("non-finite steps", [Series("skipped steps", steps, bad)], "step", "steps skipped in the interval"))
    empty = "" if run.metrics else f'<p class="muted">no line in {METRICS_FILE} yet</p>'
    return empty + f'<div class="charts">{"".join(charts)}</div>'


def _config(run: RunFiles, problems: list[str]) -> str:
    """The config's tables; a section that is no table, and a setting not of its default's type, are problems."""
    if run.config is None:
        return '<p class="muted">no config.json yet (the run writes it once it has read its data)</p>'
    defaults = Config().to_dict()
    parts = []
    for name, values in run.config.items():
        if not isinstance(values, dict):
            problems.append(f"{CONFIG_FILE}: [{name}] is {shown(values)}, not a table of settings: not shown")
            continue
        known = defaults.get(name, {})
        keys = list(values)
        for key in keys:
            kind = _kind_of(known[key]) if key in known else None
            if kind and not kind[1](values[key]):
                problems.append(f"{CONFIG_FILE}: {name}.{key} is {shown(values[key])}, not {kind[0]} like its default")
        parts.append(f"<div><h3>[{escape(name)}]</h3>" + table(
            ("key", "value", "default"), [(key, shown(values[key], 200), shown(known.get(key, ""), 200)) for key in keys], "config",
            changed=[key in known and values[key] != known[key] for key in keys]) + "</div>")
    return f'<p class="muted">settings that differ from the defaults in bold</p><div class="config-sections">{"".join(parts)}</div>'


def _kind_of(default: object) -> tuple[str, object] | None:
    """(what a setting must be, its test) for a default's type; None for a type not checked."""
    if isinstance(default, bool):
        return "true or false", lambda value: isinstance(value, bool)
    if isinstance(default, int):
        return "a whole number", lambda value: isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return "a finite number", lambda value: (isinstance(value, (int, float)) and not isinstance(value, bool)
                                                 and (isinstance(value, int) or math.isfinite(value)))
    if isinstance(default, str):
        return "a string", lambda value: isinstance(value, str)
    return None
