"""An `evaluate generator` report on a page: the overall figures, readability and diversity per
class, and the best and worst classes as pictures.

The JSON is what `cond-lsgan evaluate generator` writes (scoring.py documents each
figure); its picture of the best and worst classes, generated next to real, lies beside
it as <report>.png and is embedded when present. A file that is not such a report is
refused with one line, before any page is written.
"""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path

from ..evaluation.common import picture_path
from ..shared import InputError
from .page import html_page, notes, picture, section, table, write_page
from .svg import scatter_chart

SHOWN = 8  # best and worst classes listed
CLASS_COLUMNS = ("readability", "confidence", "real_readability", "diversity_ratio", "pixel_diversity_ratio", "judge_fid",
                 "copies", "collapsed")


def load_evaluation(path: str | Path) -> tuple[dict, bytes | None]:
    """The report's JSON and the PNG beside it (None if there is none); InputError if it is not such a report."""
    path = Path(path)
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"evaluation report not found: {path}") from None
    except OSError as error:
        raise InputError(f"cannot read the evaluation report {path}: {error.strerror or error}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"{path}: not the JSON report of cond-lsgan evaluate generator ({error})") from None
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
    return write_page(html_page(title, evaluation_sections(report, best_and_worst, str(report_path))), out)


def evaluation_sections(report: dict, best_and_worst: bytes | None, origin: str) -> list[str]:
    """Sections of a page for one evaluation report read from `origin`."""
    rows = report["per_class"]
    ranked = sorted(rows, key=lambda row: (-_value(row, "readability", -math.inf), _value(row, "judge_fid", math.inf)))
    shown = min(SHOWN, max(1, len(ranked) // 2))
    summary = table(("figure", "value"), _summary_rows(report), "summary")
    chart = scatter_chart("per class: readability and diversity",
                          [(row["readability"], row.get("diversity_ratio"), str(row["class"])) for row in rows],
                          "readability (share read as the class)", "diversity / real (features)")
    pictures = (picture(best_and_worst, "best and worst classes, generated | real", "best-worst") if best_and_worst
                else notes([f"no picture of the best and worst classes beside {origin} (evaluate generator writes it there "
                            "as .png)"]))
    best_worst = [f"<h3>best {shown}</h3>" + _class_table(ranked[:shown])]
    if len(ranked) > 1:
        best_worst.append(f"<h3>worst {shown}</h3>" + _class_table(ranked[::-1][:shown]))
    return [
        section("Evaluation", f'<p class="muted">{escape(origin)}</p>', summary, anchor="evaluation"),
        section("Readability and diversity per class", f'<div class="charts">{chart}</div>', anchor="per-class-chart"),
        section("Best and worst classes", pictures, *best_worst, anchor="best-worst"),
        section(f"Every class ({len(rows):,}), worst readability first",
                f'<div class="scroll">{_class_table(ranked[::-1], "per-class")}</div>', anchor="per-class"),
    ]


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
