"""Keep only the generated glyphs a judge reads as their label: `generate --judge J --min-confidence P`.

Generated glyphs used as training data help a recogniser only if they show the
character they are labelled with; a wrong or illegible one is label noise (Ding et al.
2023 filter by a recogniser's confidence before use). So each requested class is drawn
in rounds: a round generates what the class still lacks (more where the class's
acceptance so far was low), the judge reads them, and a glyph is kept when the judge's
probability of its label is at least P. After `max_rounds` rounds a class still short is
reported as such, never filled with rejected glyphs. Round r draws its noise from the
stream seeded by (seed, r), so the same arguments give the same glyphs.

The judge is matched to the checkpoint by class text, as in `evaluate`. Use a judge that
was not part of the generator's training loss (`loss.classifier`), or the filter only
confirms what the generator was taught to please.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data_tools_api import InputError
from ..judge import judge_outputs
from ..runtime import mixed_seed
from ..selection import class_mapping

MAX_OVERDRAW = 8  # a round draws at most this many times what a class still lacks


@dataclass
class FilterReport:
    """Per requested class: glyphs drawn and kept, in the order the classes were asked for."""

    classes: list[str]
    asked: int
    drawn: np.ndarray
    kept: np.ndarray
    min_confidence: float

    @property
    def acceptance(self) -> np.ndarray:
        return self.kept / np.maximum(self.drawn, 1)

    def short(self) -> list[tuple[str, int]]:
        return [(text, int(kept)) for text, kept in zip(self.classes, self.kept) if kept < self.asked]

    def summary(self) -> str:
        rates = self.acceptance
        worst = int(np.argmin(rates))
        return (f"judge filter (probability of the label >= {self.min_confidence}): kept {int(self.kept.sum()):,} of "
                f"{int(self.drawn.sum()):,} drawn ({self.kept.sum() / max(self.drawn.sum(), 1):.0%}); acceptance per class: "
                f"median {np.median(rates):.0%}, lowest {rates[worst]:.0%} ({self.classes[worst]})")

    def warning(self) -> str | None:
        short = self.short()
        if not short:
            return None
        shown = ", ".join(f"{text} {kept}/{self.asked}" for text, kept in short[:10])
        more = f" ... ({len(short)} in all)" if len(short) > 10 else ""
        return f"warning: {len(short)} class(es) got fewer than {self.asked} glyphs the judge accepts: {shown}{more}"

    def to_dict(self) -> dict:
        return {"min_confidence": self.min_confidence, "asked_per_class": self.asked,
                "classes": self.classes, "drawn": self.drawn.tolist(), "kept": self.kept.tolist()}


def check_filter_options(judge: str | None, min_confidence: float | None, max_rounds: int) -> None:
    if (judge is None) != (min_confidence is None):
        raise InputError("--judge and --min-confidence go together (the judge reads the glyphs, P is how sure it must be)")
    if min_confidence is not None and not 0.0 < min_confidence <= 1.0:
        raise InputError(f"--min-confidence must be in (0, 1], got {min_confidence}")
    if not 1 <= max_rounds <= 100:
        raise InputError(f"--max-rounds must be 1 to 100, got {max_rounds}")


def filtered_glyphs(loaded, classes: list[int], per_class: int, judge, min_confidence: float, seed: int,
                    batch_size: int, truncation: float | None, max_rounds: int) -> tuple[np.ndarray, np.ndarray, FilterReport]:
    """Images (N, H, W) and labels (N,), class-major in the order of `classes`, and the report.

    `loaded` is a loaded_generator.LoadedGenerator of a conditional model, `judge` a judge.Judge.
    """
    if judge.image_size != loaded.image_size:
        raise InputError(f"the judge reads {judge.image_size}px images; the generator makes {loaded.image_size}px")
    to_judge = class_mapping(loaded.classes, judge.classes, "the checkpoint", "the judge", used=classes)
    kept: dict[int, list[np.ndarray]] = {c: [] for c in classes}
    drawn = dict.fromkeys(classes, 0)
    for round_index in range(max_rounds):
        missing = {c: per_class - sum(len(part) for part in kept[c]) for c in classes}
        labels = []
        for c, need in missing.items():
            if need > 0:
                accepted = sum(len(part) for part in kept[c])
                rate = accepted / drawn[c] if drawn[c] else 1.0
                labels += [c] * min(need * MAX_OVERDRAW, int(np.ceil(need / max(rate, 1.0 / MAX_OVERDRAW))))
        if not labels:
            break
        images = np.concatenate(list(loaded.images(labels, 0, _round_seed(seed, round_index), batch_size, truncation)))
        labels = np.asarray(labels)
        read = judge_outputs(judge, images, to_judge[labels])
        good = read.class_probability >= min_confidence
        for c in np.unique(labels):
            mine = labels == c
            drawn[int(c)] += int(mine.sum())
            kept[int(c)].append(images[mine & good])
    out_images, out_labels, kept_counts = [], [], []
    for c in classes:
        accepted = np.concatenate(kept[c])[:per_class] if kept[c] else np.zeros((0, loaded.image_size, loaded.image_size), np.uint8)
        out_images.append(accepted)
        out_labels.append(np.full(len(accepted), c, dtype=np.int64))
        kept_counts.append(len(accepted))
    report = FilterReport([loaded.classes.text[c] for c in classes], per_class, np.array([drawn[c] for c in classes]),
                          np.array(kept_counts), min_confidence)
    return np.concatenate(out_images), np.concatenate(out_labels), report


def _round_seed(seed: int, round_index: int) -> int:
    return seed if round_index == 0 else mixed_seed(seed, round_index) % 2**63
