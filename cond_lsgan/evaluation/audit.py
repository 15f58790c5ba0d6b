"""`cond-lsgan audit`: glyphs of a store that a judge reads as another class, and glyphs unlike the rest of their class.

A wrong label is worse than a missing glyph: a font that draws a simplified code point
in its traditional form (Liu Jian Mao Cao draws 会 as 會), a writer's slip in a CASIA
file, a fallback glyph mapped in a cmap. A cmap check cannot see any of these; a judge
can. Two flags, each with its evidence:

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

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..shared import GlyphSet, InputError, StoreWriter, image_grid, read_store, save_png
from .common import class_mapping, write_json
from .judge import judge_outputs, load_judge

MIN_CLASS_GLYPHS = 5  # fewer glyphs in a class give no robust spread to call one of them an outlier
SHEET_GLYPHS = 400  # the sheet shows at most this many flagged glyphs, the most confident misreads first
CLEAN, MISREAD, OUTLIER = 0, 1, 2
KIND_NAMES = {MISREAD: "misread", OUTLIER: "outlier"}


@dataclass
class AuditResult:
    """Per glyph of the audited store (N,): its flag and the evidence for it."""

    kinds: np.ndarray  # int8: CLEAN, MISREAD or OUTLIER
    read_as: list[str]  # the class the judge reads, by text
    confidence: np.ndarray  # float: the judge's probability of read_as
    label_probability: np.ndarray  # float: the judge's probability of the glyph's own label
    distance_z: np.ndarray  # float: robust z of the feature distance to the class median (nan in small classes)


def audit_glyphs(glyphs: GlyphSet, judge, min_confidence: float = 0.9, outlier_z: float = 4.0) -> AuditResult:
    """Flag the glyphs of `glyphs` by `judge` (a loaded judge); see the module docstring."""
    if not 0.0 < min_confidence <= 1.0:
        raise InputError(f"--min-confidence must be in (0, 1], got {min_confidence}")
    if outlier_z <= 0:
        raise InputError(f"--outlier-z must be positive, got {outlier_z}")
    to_judge = class_mapping(glyphs.classes, judge.classes, "the audited store", "the judge",
                             used=np.unique(glyphs.labels).tolist())
    outputs = judge_outputs(judge, glyphs.images, to_judge[glyphs.labels])
    predictions = outputs.top_classes[:, 0]
    misread = (predictions != to_judge[glyphs.labels]) & (outputs.top_probability >= min_confidence)
    distance_z = class_distance_z(outputs.features, glyphs.labels)
    outlier = ~misread & (distance_z > outlier_z) & (outputs.class_probability < 0.5)
    kinds = np.where(misread, MISREAD, np.where(outlier, OUTLIER, CLEAN)).astype(np.int8)
    return AuditResult(kinds, [judge.classes.text[i] for i in predictions.tolist()], outputs.top_probability.astype(float),
                       outputs.class_probability.astype(float), distance_z)


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
                device: str = "auto") -> dict:
    """Audit `store` with the judge at `judge_path`; write the report JSON, the store without flagged glyphs and the
    sheet of flagged glyphs where asked; returns the report."""
    glyphs = read_store(store)
    judge = load_judge(judge_path, device)
    if judge.image_size != glyphs.image_size:
        raise InputError(f"{judge_path} reads {judge.image_size}px glyphs; {store} holds {glyphs.image_size}px glyphs")
    result = audit_glyphs(glyphs, judge, min_confidence, outlier_z)
    summary = audit_report(glyphs, result, str(store), str(judge_path), min_confidence, outlier_z)
    if report is not None:
        write_json(summary, report)
    if sheet is not None and summary["flagged"]:
        save_png(flagged_sheet(glyphs, result), sheet)
    if clean is not None:
        write_without_flagged(glyphs, result, clean, summary)
    return summary


def audit_report(glyphs: GlyphSet, result: AuditResult, store: str, judge: str, min_confidence: float,
                 outlier_z: float) -> dict:
    """The report: counts, a row per source (most flagged share first, then least read) and a row per flagged glyph.

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
            sources.append({"source": name, "glyphs": int(mine.sum()), "misread": int((kinds == MISREAD).sum()),
                            "outliers": int((kinds == OUTLIER).sum()), "flagged_share": float((kinds != CLEAN).mean()),
                            "read_share": float(read_right[mine].mean())})
    sources.sort(key=lambda row: (-row["flagged_share"], row["read_share"], row["source"]))
    rows = [{"index": int(i), "class": glyphs.classes.text[glyphs.labels[i]], "source": glyphs.sources[glyphs.source_ids[i]],
             "kind": KIND_NAMES[int(result.kinds[i])], "read_as": result.read_as[i], "confidence": float(result.confidence[i]),
             "label_probability": float(result.label_probability[i]),
             "distance_z": None if np.isnan(result.distance_z[i]) else float(result.distance_z[i])} for i in flagged]
    return {"store": store, "judge": judge, "min_confidence": min_confidence, "outlier_z": outlier_z, "glyphs": len(glyphs),
            "flagged": len(rows), "misread": int((result.kinds == MISREAD).sum()),
            "outliers": int((result.kinds == OUTLIER).sum()), "sources": sources, "flagged_glyphs": rows}


def flagged_sheet(glyphs: GlyphSet, result: AuditResult):
    """A captioned grid of the flagged glyphs: "label>read" for a misread, "label?" for an outlier; misreads first."""
    flagged = np.flatnonzero(result.kinds != CLEAN)
    order = sorted(flagged.tolist(), key=lambda i: (int(result.kinds[i]), -result.confidence[i]))[:SHEET_GLYPHS]
    captions = [f"{glyphs.classes.text[glyphs.labels[i]]}>{result.read_as[i]}" if result.kinds[i] == MISREAD
                else f"{glyphs.classes.text[glyphs.labels[i]]}?" for i in order]
    return image_grid(glyphs.images[order], captions, columns=20, scale=2)


def write_without_flagged(glyphs: GlyphSet, result: AuditResult, out: str | Path, summary: dict) -> None:
    """The store without its flagged glyphs, in the same order, with the same class and source tables."""
    keep = result.kinds == CLEAN
    provenance = {**glyphs.provenance, "audit": {key: summary[key] for key in (
        "store", "judge", "min_confidence", "outlier_z", "glyphs", "misread", "outliers")}}
    with StoreWriter(out, glyphs.image_size, glyphs.classes, glyphs.sources, provenance) as writer:
        writer.append(glyphs.images[keep], glyphs.labels[keep], glyphs.source_ids[keep])


def summary_text(report: dict, sources_shown: int = 10, glyphs_shown: int = 10) -> str:
    """What the command prints: the counts, the most flagged sources, the first flagged glyphs."""
    lines = [f"audited {report['glyphs']:,} glyphs: {report['flagged']:,} flagged ({report['misread']:,} misread, "
             f"{report['outliers']:,} outliers)"]
    for row in report["sources"][:sources_shown]:
        lines.append(f"  {row['source']}: {row['misread'] + row['outliers']:,} of {row['glyphs']:,} flagged "
                     f"({row['flagged_share']:.1%}; {row['misread']} misread, {row['outliers']} outliers); "
                     f"the judge reads {row['read_share']:.1%} as their label")
    for row in report["flagged_glyphs"][:glyphs_shown]:
        evidence = f"read as {row['read_as']} ({row['confidence']:.2f})" if row["kind"] == "misread" else \
            f"unlike its class (z {row['distance_z']:.1f}), its label at {row['label_probability']:.2f}"
        lines.append(f"  #{row['index']} {row['class']} from {row['source']}: {row['kind']}, {evidence}")
    return "\n".join(lines)
