"""An `evaluate generator` report on a page: the overall figures, readability and diversity per
class, and the best and worst classes as pictures.

The JSON is what `cond-lsgan evaluate generator` writes (scoring.py documents each
figure); its picture of the best and worst classes, generated next to real, lies beside
it as <report>.png and is embedded when present. A file that is not such a report (not
JSON, no per_class readability) is refused with one line, before any page is written.
One that is, but holds a figure the page cannot use (a share outside [0, 1], a count
that is no whole number, a table of figures that is a list, NaN where the report never
writes one: scoring.py writes NaN as null), has that figure left out and noted in the
Evaluation section; the rest is shown.
"""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path

from ..data_tools_api import InputError
from ..evaluation.common import picture_path
from .page import html_page, notes, picture, section, shown, table, warn_of, write_page
from .svg import drawable, scatter_chart

SHOWN = 8  # best and worst classes listed
EXAMPLES = 8  # per-class values quoted in the note about those left out


MAX_COUNT = 2**53  # counts past this are no whole numbers a float (or a browser) holds exactly

# What each figure the page shows must be (scoring.py writes it so, or null): its name in a note, its test. A number
# is one a chart can draw (svg.drawable: finite, within ±1e300; not NaN, which scoring.py writes as null).
SHARE = ("a share from 0 to 1", lambda value: drawable(value) and 0 <= value <= 1)
AMOUNT = ("a finite number of 0 or more", lambda value: drawable(value) and value >= 0)  # distances, ratios of them
COUNT = ("a whole number of 0 or more", lambda value: isinstance(value, int) and not isinstance(value, bool)
         and 0 <= value <= MAX_COUNT)
FLAG = ("true or false", lambda value: isinstance(value, bool))
FIGURES = {"step": COUNT, "generated_images": COUNT, "classes": COUNT, "readability": SHARE, "real_readability": SHARE,
           "mean_class_readability": SHARE, "judge_fid": AMOUNT}
TABLES = {"diversity": {"mean_ratio": AMOUNT, "pixel_mean_ratio": AMOUNT, "collapsed_share": SHARE},
          "nearest_real": {"copies": COUNT}, "prediction_balance": {"most_predicted_share": SHARE}}
CLASS_FIGURES = {"readability": SHARE, "confidence": SHARE, "real_readability": SHARE, "diversity_ratio": AMOUNT,
                 "pixel_diversity_ratio": AMOUNT, "judge_fid": AMOUNT, "copies": COUNT, "collapsed": FLAG}
CLASS_COLUMNS = tuple(CLASS_FIGURES)


def load_evaluation(path: str | Path) -> tuple[dict, bytes | None]:
    """The report's JSON and the PNG beside it (None if there is none); InputError if it is not such a report."""
    path = Path(path)
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"evaluation report not found: {path}") from None
    except OSError as error:
        raise InputError(f"cannot read the evaluation report {path}: {error.strerror or error}") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as error:  # ValueError: also an integer past 4,300 digits
        reason = "nested too deeply" if isinstance(error, RecursionError) else error
        raise InputError(f"{path}: not the JSON report of cond-lsgan evaluate generator ({reason})") from None
    rows = report.get("per_class") if isinstance(report, dict) else None
    if not (isinstance(rows, list) and all(isinstance(row, dict) and "class" in row and "readability" in row for row in rows)
            and "readability" in report):
        raise InputError(f"{path}: not a report of cond-lsgan evaluate generator (it has no per_class readability)")
    beside = picture_path(path)
    return report, beside.read_bytes() if beside.is_file() else None


def write_evaluation_page(report_path: str | Path, out: str | Path) -> Path:
    """`evaluate generator --html`: the report (and its picture) alone on a page at `out`."""
    report, best_and_worst = load_evaluation(report_path)
    title = f"evaluation of {Path(str(report.get('checkpoint', report_path))).name}"
    problems: list[str] = []
    written = write_page(html_page(title, evaluation_sections(report, best_and_worst, str(report_path), problems)), out)
    warn_of(problems, "in the evaluation report")
    return written


def evaluation_sections(report: dict, best_and_worst: bytes | None, origin: str, problems: list[str] | None = None) -> list[str]:
    """Sections of a page for one evaluation report read from `origin`; what it could not use is noted, and added to `problems`."""
    report, found = _checked(report)
    if problems is not None:
        problems += found
    rows = report["per_class"]
    ranked = sorted(rows, key=lambda row: (-_value(row, "readability", -math.inf), _value(row, "judge_fid", math.inf)))
    listed = min(SHOWN, max(1, len(ranked) // 2))
    summary = table(("figure", "value"), _summary_rows(report), "summary")
    chart = scatter_chart("per class: readability and diversity",
                          [(row["readability"], row.get("diversity_ratio"), str(row["class"])) for row in rows],
                          "readability (share read as the class)", "diversity / real (features)")
    pictures = (picture(best_and_worst, "best and worst classes, generated | real", "best-worst") if best_and_worst
                else notes([f"no picture of the best and worst classes beside {origin} (evaluate generator writes it there "
                            "as .png)"]))
    best_worst = [f"<h3>best {listed}</h3>" + _class_table(ranked[:listed])]
    if len(ranked) > 1:
        best_worst.append(f"<h3>worst {listed}</h3>" + _class_table(ranked[::-1][:listed]))
    return [
        section("Evaluation", f'<p class="muted">{escape(origin)}</p>', notes(found), summary, anchor="evaluation"),
        section("Readability and diversity per class", f'<div class="charts">{chart}</div>', anchor="per-class-chart"),
        section("Best and worst classes", pictures, *best_worst, anchor="best-worst"),
        section(f"Every class ({len(rows):,}), worst readability first",
                f'<div class="scroll">{_class_table(ranked[::-1], "per-class")}</div>', anchor="per-class"),
    ]


def _checked(report: dict) -> tuple[dict, list[str]]:
    """A copy of the report with each figure the page shows that is not of its kind set to None, and what was set so."""
    report, problems = dict(report), []
    for key, (kind, fits) in FIGURES.items():
        if report.get(key) is not None and not fits(report[key]):
            problems.append(f"{key} is {shown(report[key])}, not {kind}: not shown")
            report[key] = None
    for key, figures in TABLES.items():
        if report.get(key) is None:
            continue
        if not isinstance(report[key], dict):
            problems.append(f"{key} is {shown(report[key])}, not a table of figures: not shown")
            report[key] = None
            continue
        report[key] = dict(report[key])
        for name, (kind, fits) in figures.items():
            if report[key].get(name) is not None and not fits(report[key][name]):
                problems.append(f"{key}.{name} is {shown(report[key][name])}, not {kind}: not shown")
                report[key][name] = None
    rows, left_out = [], []
    for row in report["per_class"]:
        row = dict(row)
        for name, (_, fits) in CLASS_FIGURES.items():
            if row.get(name) is not None and not fits(row[name]):
                label = str(row["class"])
                left_out.append(f"{name} of class {label if len(label) <= 40 else label[:39] + '…'}: {shown(row[name], 20)}")
                row[name] = None
        rows.append(row)
    report["per_class"] = rows
    if left_out:
        problems.append(f"{len(left_out)} value{'s' if len(left_out) > 1 else ''} of per_class not shown (not of their kind, "
                        f"or out of range): {', '.join(left_out[:EXAMPLES])}{', …' if len(left_out) > EXAMPLES else ''}")
    return report, problems


def _summary_rows(report: dict) -> list[tuple[str, object]]:
    diversity, nearest = report.get("diversity") or {}, report.get("nearest_real") or {}
    rows = [("checkpoint", report.get("checkpoint")), ("step", report.get("step")), ("weights", report.get("weights")),
            ("judge", report.get("judge")), ("data", report.get("data")), ("classes", report.get("classes", len(report["per_class"]))),
            ("generated images", report.get("generated_images")), ("readability", _percent(report.get("readability"))),
            ("real readability (the judge's ceiling)", _percent(report.get("real_readability"))),
            ("mean class readability", _percent(report.get("mean_class_readability"))), ("judge-FID", report.get("judge_fid")),
            ("diversity / real (features)", diversity.get("mean_ratio")),
            ("diversity / real (pixels)", diversity.get("pixel_mean_ratio")),
            ("collapsed classes", _percent(diversity.get("collapsed_share"))), ("copies of real images", nearest.get("copies"))]
    balance = report.get("prediction_balance")
    if isinstance(balance, dict):
        rows.append(("most read as", f"{balance.get('most_predicted')} ({_percent(balance.get('most_predicted_share')) or '?'} of images)"))
    return [(name, value) for name, value in rows if value is not None]


def _class_table(rows: list[dict], css_class: str = "classes") -> str:
    return table(("class", *(name.replace("_", " ") for name in CLASS_COLUMNS)),
                 [(str(row["class"]), *(row.get(name) for name in CLASS_COLUMNS)) for row in rows], css_class)


def _value(row: dict, key: str, missing: float) -> float:
    value = row.get(key)
    return value if isinstance(value, (int, float)) and math.isfinite(value) else missing


def _percent(value: object) -> str | None:
    return f"{value:.1%}" if isinstance(value, (int, float)) else None
