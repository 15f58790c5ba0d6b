"""`cond-lsgan audit`: glyphs of a store that a judge reads as another class, and glyphs unlike the rest of their class.

A wrong label is worse than a missing glyph: a font that draws a simplified code point
in its traditional form (Liu Jian Mao Cao draws 会 as 會, and has no 會 in its cmap), a
writer's slip in a CASIA file, a fallback glyph mapped in a cmap. A cmap check cannot see
any of these; a judge can. Three flags, each with its evidence:

- **traditional**: the label s has a traditional form t among the judge's classes, and
  the judge either reads t with probability >= `min_confidence` (a misread as t), or
  gives t at least `traditional_odds` (default 10) times the probability it gives s,
  unless it confidently reads a third class. Only a judge that knows traditional forms
  names these: train it on a store rendered with `data-tools render --with-traditional`
  (its classes include 會, and its `traditional_of` map says 會 is a form of 会; the
  judge file keeps the map). The audited store needs no such classes: its classes are
  matched to the judge's by text, and the judge's extra classes are more readings.
  Why odds rather than a confident reading: a judge trained on print faces reads a
  cursive face (Liu Jian Mao Cao) with low confidence throughout (a few percent of it as
  its labels: docs/results.md), spreading its probability over a thousand classes, so
  almost nothing of it is read confidently as anything. But the label names beforehand the question to ask:
  is this s, or its traditional form t? p(t) / p(s) = exp(logit t - logit s) is the
  judge's odds between the two, whatever the other classes take, and it sees the
  parts that differ (虍 in 處, 彳 in 復, 敝 over 巾 in 幣). Ten to one is a strong
  preference; a simplified glyph the judge reads at all gives its label far more than t.
  On the font kit it names mostly true traditional forms in a cursive face and next to
  nothing in simplified ones, but which glyphs it names depends on the judge, so read
  them as examples found, not as a census (measured: docs/results.md, "Audit of the
  font kit"). The sheet captions these "会 drawn as 會";
- **misread**: the judge reads the glyph as another class with probability >=
  `min_confidence` (default 0.9);
- **outlier**: the glyph's judge features lie far from the rest of its class (robust z
  of the distance to the class's median feature vector above `outlier_z`, default 4,
  in a class of at least `MIN_CLASS_GLYPHS`), and the judge gives its label less than
  half its probability. A face drawn in a style the judge never saw (cursive) makes many
  outliers, which is why the summary is per source: a face with many flags is suspect.

Use a judge trained on other glyphs (other faces, a clean set) where you can: a judge
trained on the audited store itself has partly learnt its wrong labels.
This command lives in cond-lsgan, not data-tools, because judges do: data_tools never
imports cond_lsgan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data_tools_api import GlyphSet, InputError, StoreWriter, image_grid, read_store, save_png
from ..judge import judge_outputs, load_judge
from ..selection import class_mapping
from .common import write_json

MIN_CLASS_GLYPHS = 5  # fewer glyphs in a class give no robust spread to call one of them an outlier
SHEET_GLYPHS = 400  # the sheet shows at most this many flagged glyphs: traditional forms, misreads, outliers
CLEAN, MISREAD, OUTLIER, TRADITIONAL = 0, 1, 2, 3
KIND_NAMES = {MISREAD: "misread", OUTLIER: "outlier", TRADITIONAL: "traditional"}
SHEET_ORDER = {TRADITIONAL: 0, MISREAD: 1, OUTLIER: 2}
TRADITIONAL_ODDS = 10.0  # see the module docstring
CAPTION_PX = 84  # "会 drawn as 會" in the sheet's 12 px caption font is about 80 px wide


@dataclass
class AuditResult:
    """Per glyph of the audited store (N,): its flag and the evidence for it."""

    kinds: np.ndarray  # int8: CLEAN, MISREAD, OUTLIER or TRADITIONAL
    read_as: list[str]  # the class the judge reads, by text (for a traditional glyph: its traditional form)
    confidence: np.ndarray  # float: the judge's probability of read_as
    label_probability: np.ndarray  # float: the judge's probability of the glyph's own label
    distance_z: np.ndarray  # float: robust z of the feature distance to the class median (nan in small classes)
    odds: np.ndarray | None = None  # float: p(likeliest traditional form) / p(label); nan where the label has none


def audit_glyphs(glyphs: GlyphSet, judge, min_confidence: float = 0.9, outlier_z: float = 4.0,
                 traditional_odds: float | None = None) -> AuditResult:
    """Flag the glyphs of `glyphs` by `judge` (a loaded judge); see the module docstring.

    `traditional_odds` None: TRADITIONAL_ODDS with a judge that knows traditional forms;
    given for one that does not, it is an error (it would flag nothing).
    """
    if not 0.0 < min_confidence <= 1.0:
        raise InputError(f"--min-confidence must be in (0, 1], got {min_confidence}")
    if not 0.0 < outlier_z < math.inf:  # a NaN fails this too: it would flag no outlier at all
        raise InputError(f"--outlier-z must be a positive finite number, got {outlier_z}")
    if traditional_odds is not None and not judge.traditional_of:
        raise InputError("--traditional-odds needs a judge that knows traditional forms (train it on a store "
                         "rendered with data-tools render --with-traditional)")
    traditional_odds = TRADITIONAL_ODDS if traditional_odds is None else traditional_odds
    if not 1.0 <= traditional_odds < math.inf:
        raise InputError(f"--traditional-odds must be at least 1, got {traditional_odds}")
    to_judge = class_mapping(glyphs.classes, judge.classes, "the audited store", "the judge",
                             used=np.unique(glyphs.labels).tolist())
    labels = to_judge[glyphs.labels]
    forms = form_table(judge)[labels]  # (N, K): the judge classes of each label's traditional forms, -1 padded
    outputs = judge_outputs(judge, glyphs.images, labels, also=forms)
    top = outputs.top_classes[:, 0]
    read_as = top.copy()
    confidence = outputs.top_probability.astype(float)
    form, form_probability, odds = likeliest_form(forms, outputs.also_probability, outputs.class_probability)
    traditional = traditional_readings(labels, top, outputs.top_probability, forms, form, odds, min_confidence,
                                       traditional_odds)
    read_as[traditional], confidence[traditional] = form[traditional], form_probability[traditional]
    misread = (top != labels) & (outputs.top_probability >= min_confidence) & ~traditional
    distance_z = class_distance_z(outputs.features, glyphs.labels)
    outlier = ~misread & ~traditional & (distance_z > outlier_z) & (outputs.class_probability < 0.5)
    kinds = np.select([traditional, misread, outlier], [TRADITIONAL, MISREAD, OUTLIER], CLEAN).astype(np.int8)
    return AuditResult(kinds, [judge.classes.text[i] for i in read_as.tolist()], confidence,
                       outputs.class_probability.astype(float), distance_z, odds)


def form_table(judge) -> np.ndarray:
    """(C, K) int64: per judge class, the judge classes of its traditional forms (by the judge's traditional_of
    map), -1 padded; K >= 1, all -1 for a judge without a map."""
    index = {text: i for i, text in enumerate(judge.classes.text)}
    forms: dict[int, list[int]] = {}
    for form, simplified_classes in judge.traditional_of.items():
        for simplified in simplified_classes:
            forms.setdefault(index[simplified], []).append(index[form])
    table = np.full((len(index), max([1, *map(len, forms.values())])), -1, dtype=np.int64)
    for simplified, found in forms.items():
        table[simplified, : len(found)] = found
    return table


def likeliest_form(forms: np.ndarray, form_probabilities: np.ndarray,
                   label_probability: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per glyph: the likeliest of its label's traditional forms (-1: none), its probability, and its odds
    against the label, p(form) / p(label) (nan where the label has no form; inf where p(label) underflows to 0)."""
    best = np.where(forms >= 0, form_probabilities, -1.0).argmax(axis=1)
    rows = np.arange(len(forms))
    form, probability = forms[rows, best], form_probabilities[rows, best].astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        odds = np.where(form >= 0, probability / label_probability.astype(float), np.nan)
    return form, probability, np.where((form >= 0) & (probability == 0), 0.0, odds)


def traditional_readings(labels: np.ndarray, top: np.ndarray, top_probability: np.ndarray, forms: np.ndarray,
                         form: np.ndarray, odds: np.ndarray, min_confidence: float, traditional_odds: float) -> np.ndarray:
    """Per glyph, whether it is flagged traditional (the rule of the module docstring): its label has a form, and
    either the judge reads that form with probability >= min_confidence, or the form's odds against the label are at
    least traditional_odds while the judge reads no third class (neither the label nor one of its forms) with
    probability >= min_confidence."""
    has_form = form >= 0
    top_is_form = (forms == top[:, None]).any(axis=1) & has_form
    confident = top_probability >= min_confidence
    third_class = confident & (top != labels) & ~top_is_form
    with np.errstate(invalid="ignore"):
        strong_odds = has_form & (odds >= traditional_odds)
    return (top_is_form & confident) | (strong_odds & ~third_class)


def class_distance_z(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per row, the robust z (distance minus the class median, over 1.4826 x its MAD) of its distance to its class's
    median feature vector; nan in classes of fewer than MIN_CLASS_GLYPHS rows."""
    z = np.full(len(labels), np.nan)
    order = np.argsort(labels, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(labels[order]) != 0])
    for rows in np.split(order, starts[1:]):
        if len(rows) < MIN_CLASS_GLYPHS:
            continue
        distance = np.linalg.norm(features[rows] - np.median(features[rows], axis=0), axis=1)
        centre = np.median(distance)
        spread = 1.4826 * np.median(np.abs(distance - centre))
        z[rows] = (distance - centre) / max(spread, 1e-12 * max(centre, 1.0))
    return z


def audit_store(store: str | Path, judge_path: str | Path, report: str | Path | None = None, clean: str | Path | None = None,
                sheet: str | Path | None = None, min_confidence: float = 0.9, outlier_z: float = 4.0,
                device: str = "auto", traditional_odds: float | None = None) -> dict:
    """Audit `store` with the judge at `judge_path`; write the report JSON, the store without flagged glyphs and the
    sheet of flagged glyphs where asked; returns the report."""
    glyphs = read_store(store)
    judge = load_judge(judge_path, device)
    if judge.image_size != glyphs.image_size:
        raise InputError(f"{judge_path} reads {judge.image_size}px glyphs; {store} holds {glyphs.image_size}px glyphs")
    result = audit_glyphs(glyphs, judge, min_confidence, outlier_z, traditional_odds)
    summary = audit_report(glyphs, result, str(store), str(judge_path), min_confidence, outlier_z,
                           traditional_odds, len(judge.traditional_of))
    if report is not None:
        write_json(summary, report)
    if sheet is not None and summary["flagged"]:
        save_png(flagged_sheet(glyphs, result), sheet)
    if clean is not None:
        write_without_flagged(glyphs, result, clean, summary)
    return summary


def audit_report(glyphs: GlyphSet, result: AuditResult, store: str, judge: str, min_confidence: float,
                 outlier_z: float, traditional_odds: float | None = None, traditional_classes: int = 0) -> dict:
    """The report: counts, a row per source (most flagged share first, then least read) and a row per flagged glyph.

    `traditional_classes` is how many of the judge's classes are traditional forms: with
    0 (an older judge, or one trained without --with-traditional) no glyph can be
    flagged "traditional", and the report says so rather than reporting a plain 0.

    A source's `read_share` is how much of it the judge reads as its labels: a face the
    judge cannot read at all (a style it never saw, or wrong forms) shows there even when
    the judge is too unsure to flag single glyphs.
    """
    flagged = np.flatnonzero(result.kinds != CLEAN)
    read_right = np.array([read == glyphs.classes.text[label] for read, label in zip(result.read_as, glyphs.labels.tolist())])
    sources = []
    for source_id, name in enumerate(glyphs.sources):
        mine = glyphs.source_ids == source_id
        if mine.any():
            kinds = result.kinds[mine]
            sources.append({"source": name, "glyphs": int(mine.sum()), "traditional": int((kinds == TRADITIONAL).sum()),
                            "misread": int((kinds == MISREAD).sum()),
                            "outliers": int((kinds == OUTLIER).sum()), "flagged_share": float((kinds != CLEAN).mean()),
                            "read_share": float(read_right[mine].mean())})
    sources.sort(key=lambda row: (-row["flagged_share"], row["read_share"], row["source"]))
    rows = [{"index": int(i), "class": glyphs.classes.text[glyphs.labels[i]], "source": glyphs.sources[glyphs.source_ids[i]],
             "kind": KIND_NAMES[int(result.kinds[i])], "read_as": result.read_as[i], "confidence": float(result.confidence[i]),
             "label_probability": float(result.label_probability[i]),
             "distance_z": None if np.isnan(result.distance_z[i]) else float(result.distance_z[i]),
             **({"odds": float(result.odds[i])} if result.kinds[i] == TRADITIONAL else {})} for i in flagged]
    if traditional_classes:
        traditional_odds = TRADITIONAL_ODDS if traditional_odds is None else traditional_odds
    return {"store": store, "judge": judge, "min_confidence": min_confidence, "outlier_z": outlier_z,
            "judge_traditional_classes": traditional_classes,
            "traditional_odds": traditional_odds if traditional_classes else None, "glyphs": len(glyphs),
            "flagged": len(rows), "traditional": int((result.kinds == TRADITIONAL).sum()),
            "misread": int((result.kinds == MISREAD).sum()),
            "outliers": int((result.kinds == OUTLIER).sum()), "sources": sources, "flagged_glyphs": rows}


def flagged_sheet(glyphs: GlyphSet, result: AuditResult):
    """A captioned grid of the flagged glyphs: "label drawn as read" for a traditional form, "label>read" for a
    misread, "label?" for an outlier; in that order, the strongest odds and most confident first. Cells are enlarged enough for the
    traditional captions where there are any (scale 2 otherwise, as before)."""
    flagged = np.flatnonzero(result.kinds != CLEAN)
    strength = np.where(result.kinds == TRADITIONAL, result.odds if result.odds is not None else 0.0, result.confidence)
    order = sorted(flagged.tolist(), key=lambda i: (SHEET_ORDER[int(result.kinds[i])], -strength[i]))[:SHEET_GLYPHS]

    def caption(i: int) -> str:
        label = glyphs.classes.text[glyphs.labels[i]]
        return {TRADITIONAL: f"{label} drawn as {result.read_as[i]}", MISREAD: f"{label}>{result.read_as[i]}"}.get(
            int(result.kinds[i]), f"{label}?")

    traditional = any(result.kinds[i] == TRADITIONAL for i in order)
    scale = max(2, math.ceil(CAPTION_PX / glyphs.image_size)) if traditional else 2
    return image_grid(glyphs.images[order], [caption(i) for i in order], columns=20, scale=scale)


def write_without_flagged(glyphs: GlyphSet, result: AuditResult, out: str | Path, summary: dict) -> None:
    """The store without its flagged glyphs, in the same order, with the same class and source tables."""
    keep = result.kinds == CLEAN
    provenance = {**glyphs.provenance, "audit": {key: summary[key] for key in (
        "store", "judge", "min_confidence", "outlier_z", "glyphs", "misread", "outliers")}}
    if summary["judge_traditional_classes"]:
        provenance["audit"].update(traditional=summary["traditional"], traditional_odds=summary["traditional_odds"])
    with StoreWriter(out, glyphs.image_size, glyphs.classes, glyphs.sources, provenance,
                     traditional_of=glyphs.traditional_of) as writer:
        writer.append(glyphs.images[keep], glyphs.labels[keep], glyphs.source_ids[keep])


def summary_text(report: dict, sources_shown: int = 10, glyphs_shown: int = 10) -> str:
    """What the command prints: the counts, the most flagged sources, the first flagged glyphs.

    The traditional counts show only for a judge that knows traditional forms, so an older
    judge's audit prints what it always did.
    """
    knows = bool(report.get("judge_traditional_classes"))

    def counts(row: dict) -> str:
        return (f"{row['traditional']:,} traditional, " if knows else "") + f"{row['misread']:,} misread, {row['outliers']:,} outliers"

    lines = [f"audited {report['glyphs']:,} glyphs: {report['flagged']:,} flagged ({counts(report)})"]
    for row in report["sources"][:sources_shown]:
        flagged = row["misread"] + row["outliers"] + row.get("traditional", 0)
        lines.append(f"  {row['source']}: {flagged:,} of {row['glyphs']:,} flagged "
                     f"({row['flagged_share']:.1%}; {counts(row)}); the judge reads {row['read_share']:.1%} as their label")
    traditional_first = sorted(report["flagged_glyphs"], key=lambda row: row["kind"] != "traditional")  # stable
    for row in traditional_first[:glyphs_shown]:
        if row["kind"] == "traditional":
            evidence = (f"{row['class']} drawn as {row['read_as']} (odds {row['odds']:,.0f} to 1: {row['read_as']} at "
                        f"{row['confidence']:.3g}, {row['class']} at {row['label_probability']:.3g})")
        elif row["kind"] == "misread":
            evidence = f"read as {row['read_as']} ({row['confidence']:.2f})"
        else:
            evidence = f"unlike its class (z {row['distance_z']:.1f}), its label at {row['label_probability']:.2f}"
        lines.append(f"  #{row['index']} {row['class']} from {row['source']}: {row['kind']}, {evidence}")
    return "\n".join(lines)
