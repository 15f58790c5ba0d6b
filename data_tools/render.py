"""Render a character set from font faces into a glyph store (`data-tools render`).

One class per character, in charset order (so class i of every `gb2312-1` store is the
same character); one source per face, named by the face's full name. Samples are in
the order face, then character, then variant (variant 0 is the plain glyph, 1..K the
`--augment` variants), whatever the number of worker processes.

What gets dropped, and why, so that no sample is a box or a blank:
- a character the face's cmap lacks is skipped before drawing (Pillow would draw a
  .notdef box) and counted as `missing`;
- a glyph that draws no ink is `blank`;
- a bitmap that the face draws for more than `REPEAT_LIMIT` characters is a fallback
  glyph (a box, a placeholder mapped in the cmap) and those characters are `repeated`;
- a face whose glyphs are, character for character, identical to an earlier face's
  (the Mono twin of a CJK face, the same file installed twice) adds nothing and is left
  out as a duplicate.
- with `traditional_of` (`--with-traditional`: classes added for the traditional forms
  of the charset's characters, traditional.py), a face's glyph of a traditional form that
  is the very bitmap it draws for one of the form's simplified characters is `aliased`
  (the cmap sends both code points to one glyph): it would teach a judge that the
  simplified shape is the traditional class.
- a face FreeType cannot draw (damaged outlines behind an intact cmap: "invalid
  outline") is `damaged` and left out whole, the glyphs it did draw too, since none of
  them can be trusted; named in the report and the provenance. With `strict`, or when it
  is the only face, it is an `InputError` instead, as is having no face left to draw.

How one glyph is drawn, fitted and augmented is drawing.py's job. The random numbers of
each augmented variant come from
(seed, face position, character index, variant), never from a shared stream, so a
worker computes any glyph on its own and the output does not depend on the number of
workers or the order they finish in.

Work is split into chunks of one face's characters, sent in order to a process pool
(`imap`; render_workers.py); each worker opens each file of a face once. The main process holds one face's results
at a time (the repeated-bitmap and duplicate-face checks need the whole face: size^2 x
(1 + augment) bytes per character, 29 MB for 3,755 characters at 28 px with
`--augment 9`), then writes them with `StoreWriter`, so an interrupted or failed run
leaves no file.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import numpy as np

from .errors import InputError
from .drawing import draw_size
from .fonts import FontFace, discover_fonts, open_font_spec
from .render_workers import RenderJob, chunk_results
from .store import MAX_IMAGE_SIZE, ClassTable, StoreWriter

REPEAT_LIMIT = 3  # a bitmap drawn for more characters than this is a fallback glyph, not a character
CHUNK_CHARACTERS = 64  # characters per task sent to a worker
DEFAULT_MIN_COVERAGE = 0.9
MAX_FACE_BYTES = 2 << 30  # one face's glyphs are held in memory (see the module docstring): at most this much
# Pan-CJK collections hold one face per region; those for other regions than mainland
# China draw many characters in Japanese, Korean or Traditional forms.
OTHER_REGION_TAGS = frozenset({"JP", "J", "KR", "K", "TC", "HC", "HK", "TW", "MO", "MBE"})

@dataclass
class FaceResult:
    """What one face contributed: kept characters and why the others were dropped."""

    face: FontFace
    source: str | None = None  # source name in the store; None if the face was left out
    rendered: int = 0  # characters kept (each with 1 + augment samples)
    missing: list[str] = field(default_factory=list)
    blank: list[str] = field(default_factory=list)
    repeated: list[str] = field(default_factory=list)
    aliased: list[str] = field(default_factory=list)  # traditional forms drawn with their simplified character's bitmap
    duplicate_of: str | None = None
    damaged: str | None = None  # why FreeType cannot draw the face ("FreeType cannot draw 九 (invalid outline)")


class LeftOut(NamedTuple):
    """A face `--all-fonts` did not use: `kind` is "region" or "coverage"."""

    face: FontFace
    kind: str
    reason: str


@dataclass
class RenderReport:
    out: Path
    image_size: int
    classes: int
    samples: int
    faces: list[FaceResult]
    left_out: list[LeftOut]
    empty_classes: list[str]
    traditional: int = 0  # classes that are traditional forms of others (--with-traditional)


def default_workers() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_faces(
    font_specs: Sequence[str], all_fonts: bool, characters: Sequence[str], min_coverage: float | None = None,
    font_dirs: Sequence[str | os.PathLike] = (),
) -> tuple[list[FontFace], list[LeftOut]]:
    """The faces for `--font SPEC ...`, or for `--all-fonts` and/or `--fonts-in DIR ...`, and those the latter left out.

    `--fonts-in` adds the faces under each folder (web-font subset families included) to
    the installed ones `--all-fonts` chooses from, or alone is all there is to choose from.
    """
    if font_specs and (all_fonts or font_dirs):
        raise InputError("--font names the faces itself; it does not go with --all-fonts or --fonts-in")
    for folder in font_dirs:
        if not Path(folder).is_dir():
            raise InputError(f"--fonts-in {folder}: no such folder")
    if all_fonts or font_dirs:
        where = "installed " if not font_dirs else ""
        found = discover_fonts(font_dirs, installed=all_fonts)
        faces, left_out = select_faces(found, characters, DEFAULT_MIN_COVERAGE if min_coverage is None else min_coverage)
        if not faces:
            raise InputError(
                f"no {where}font face covers enough of the {len(characters):,} characters "
                f"({len(left_out)} faces looked at; see `data-tools fonts --charset`)"
            )
        return faces, left_out
    if min_coverage is not None:
        raise InputError("--min-coverage applies to --all-fonts and --fonts-in only")
    if not font_specs:
        raise InputError("name at least one font (--font PATH[#FACE]), use --all-fonts or --fonts-in DIR")
    return [open_font_spec(spec) for spec in font_specs], []


def select_faces(faces: Sequence[FontFace], characters: Sequence[str], min_coverage: float = DEFAULT_MIN_COVERAGE) -> tuple[list[FontFace], list[LeftOut]]:
    """The faces `--all-fonts` uses, and those it leaves out with the reason.

    Left out: faces tagged for another region (JP, KR, TC, HK, ...: see
    OTHER_REGION_TAGS), and faces covering less than `min_coverage` of the characters.
    """
    if not 0.0 <= min_coverage <= 1.0:
        raise InputError(f"--min-coverage must be between 0 and 1, got {min_coverage}")
    chosen, left_out = [], []
    for face in faces:
        region = OTHER_REGION_TAGS.intersection(face.name.split())
        if region:
            left_out.append(LeftOut(face, "region", f"made for another region ({', '.join(sorted(region))})"))
            continue
        covered = sum(face.covers(characters))
        if covered < min_coverage * len(characters):
            left_out.append(LeftOut(face, "coverage", f"covers {covered:,} of {len(characters):,} characters ({covered / len(characters):.0%})"))
            continue
        chosen.append(face)
    return chosen, left_out


def render_glyphs(
    out: str | os.PathLike,
    characters: Sequence[str],
    faces: Sequence[FontFace],
    size: int = 28,
    margin: int = 2,
    augment: int = 0,
    seed: int = 0,
    workers: int = 1,
    charset_name: str = "",
    left_out: Sequence[LeftOut] = (),
    compression: str | None = None,
    progress: bool = False,
    on_chunk: Callable[[int], None] | None = None,
    traditional_of: dict[str, list[str]] | None = None,
    strict: bool = False,
) -> RenderReport:
    """Render `characters` from `faces` into a new glyph store at `out`.

    `left_out` (faces a selection skipped) is only recorded in the report and the
    provenance. `traditional_of` ({form: [simplified characters]}, all of them in
    `characters`) is recorded in the store; the module docstring says what it drops, and
    what `strict` does. `progress` shows a bar on stderr; `on_chunk(n)` is called after
    each chunk of n characters arrives (an exception from it aborts the run cleanly).
    """
    characters = list(characters)
    faces = list(faces)
    _check_options(characters, faces, size, margin, augment, seed, workers)
    part_of = [face.part_of(characters) for face in faces]  # which file of the face draws each character; -1: none
    presence = [[part >= 0 for part in parts] for parts in part_of]
    for face, present in zip(faces, presence):
        if not any(present):
            raise InputError(f"font {face.spec} ({face.name}) has none of the {len(characters):,} characters of {charset_name or 'the charset'}")
    results = [FaceResult(face, missing=[c for c, p in zip(characters, present) if not p]) for face, present in zip(faces, presence)]
    tasks = []  # (face position, character indices), in the order samples are stored
    for position, present in enumerate(presence):
        indices = [i for i, p in enumerate(present) if p]
        tasks += [(position, tuple(indices[start : start + CHUNK_CHARACTERS])) for start in range(0, len(indices), CHUNK_CHARACTERS)]
    files = tuple(tuple((str(path), index) for path, index in face.files) for face in faces)
    parts = tuple(tuple(face_parts) if len(face.files) > 1 else None for face, face_parts in zip(faces, part_of))
    job = RenderJob(files, parts, tuple(characters), size, margin, augment, seed)
    provenance = {
        "command": "data-tools render",
        "charset": charset_name,
        "charset_size": len(characters),
        "size": size,
        "margin": margin,
        "draw_size": draw_size(size),
        "augment": augment,
        "seed": seed,
        "sample_order": "face, character, variant (0 = plain, 1..augment = augmented)",
    }
    from tqdm import tqdm  # imported here: only rendering shows a progress bar

    bar_options = {"total": sum(map(sum, presence)), "unit": "char", "disable": not progress, "file": sys.stderr, "dynamic_ncols": True}
    # the pool forks before the bar starts its monitor thread (forking a threaded process is unsafe)
    with chunk_results(job, tasks, workers) as chunks, tqdm(**bar_options) as bar:
        with StoreWriter(out, size, ClassTable(characters), [], provenance, compression, traditional_of=traditional_of) as writer:
            index = {character: i for i, character in enumerate(characters)}
            aliases = {index[form]: [index[s] for s in simplified] for form, simplified in writer.traditional_of.items()}
            collector = _FaceCollector(job, results, writer, aliases, strict)
            for chunk in chunks:
                collector.add(chunk.position, chunk.rendered, chunk.damage)
                bar.update(len(chunk.rendered))
                if on_chunk is not None:
                    on_chunk(len(chunk.rendered))
            collector.finish()
            damaged = [f"{r.face.name} ({r.face.spec}): {r.damaged}" for r in results if r.damaged is not None]
            if damaged and all(result.source is None for result in results):
                raise InputError("no face could be drawn; damaged: " + "; ".join(damaged))
            writer.provenance["fonts"] = [_face_provenance(result) for result in results]
            writer.provenance["left_out"] = [{**_face_identity(item.face), "reason": item.reason} for item in left_out]
            if traditional_of:
                writer.provenance["traditional_classes"] = len(traditional_of)
            samples = writer.count
    covered = set()
    for result, present in zip(results, presence):
        if result.source is not None:
            dropped = set(result.blank) | set(result.repeated) | set(result.aliased)
            covered.update(c for c, p in zip(characters, present) if p and c not in dropped)
    empty = [c for c in characters if c not in covered]
    return RenderReport(Path(out), size, len(characters), samples, results, list(left_out), empty, len(traditional_of or {}))


def format_report(report: RenderReport) -> str:
    """The summary `data-tools render` prints: per face what was kept and what dropped."""
    kept = [r for r in report.faces if r.source is not None]
    lines = [
        f"wrote {report.samples:,} glyphs ({report.image_size}x{report.image_size}) of {report.classes:,} classes "
        f"from {len(kept)} face(s) to {report.out}"
        + (f"; {report.traditional:,} of the classes are traditional forms (--with-traditional)" if report.traditional else "")
    ]
    for result in report.faces:
        if result.duplicate_of is not None or result.damaged is not None:
            continue
        face = result.face
        dropped = []
        for label, chars in (("missing", result.missing), ("blank", result.blank), ("repeated", result.repeated),
                             ("aliased", result.aliased)):
            if chars:
                dropped.append(f"{label} {len(chars):,}" + (f" ({_short(chars)})" if label != "missing" or len(chars) <= 20 else ""))
        lines.append(f"  {result.rendered:>7,}  {face.name} ({face.spec})" + (f"; dropped: {', '.join(dropped)}" if dropped else ""))
    duplicates: dict[str, list[str]] = {}
    for result in report.faces:
        if result.duplicate_of is not None:
            duplicates.setdefault(result.duplicate_of, []).append(f"{result.face.name} ({result.face.spec})")
    for original, copies in duplicates.items():
        lines.append(f"left out, same glyphs as {original}: {'; '.join(copies)}")
    for result in report.faces:
        if result.damaged is not None:
            lines.append(f"left out, damaged: {result.face.name} ({result.face.spec}): {result.damaged}")
    regional = [item.face.name for item in report.left_out if item.kind == "region"]
    if regional:
        lines.append(f"left out, made for other regions (name one with --font to use it): {_names(regional)}")
    coverage = [item for item in report.left_out if item.kind == "coverage"]
    for item in coverage:
        if not item.reason.startswith("covers 0 "):
            lines.append(f"left out, too few characters: {item.face.name} ({item.face.spec}) {item.reason}")
    none = [item.face.name for item in coverage if item.reason.startswith("covers 0 ")]
    if none:
        lines.append(f"left out, none of the characters: {_names(none)}")
    if report.empty_classes:
        lines.append(f"{len(report.empty_classes):,} classes have no samples: {_short(report.empty_classes)}")
    return "\n".join(lines)


def _names(names: Sequence[str], shown: int = 8) -> str:
    text = ", ".join(names[:shown])
    return f"{len(names)} faces: " + text + (f", ... (+{len(names) - shown})" if len(names) > shown else "")


def _short(characters: Sequence[str], shown: int = 20) -> str:
    text = "".join(characters[:shown])
    return text + (f"... (+{len(characters) - shown:,})" if len(characters) > shown else "")


def _check_options(characters, faces, size, margin, augment, seed, workers) -> None:
    if not characters:
        raise InputError("no characters to render")
    if not faces:
        raise InputError("no font faces to render from")
    if not 8 <= size <= MAX_IMAGE_SIZE:
        raise InputError(f"--size must be between 8 and {MAX_IMAGE_SIZE}, got {size}")
    if margin < 0 or size - 2 * margin < 4:
        raise InputError(f"--margin {margin} leaves no room in a {size}x{size} image")
    if augment < 0:
        raise InputError(f"--augment must be 0 or more, got {augment}")
    face_bytes = len(characters) * (1 + augment) * size * size
    if face_bytes > MAX_FACE_BYTES:
        raise InputError(f"{len(characters):,} characters x {1 + augment:,} variants at {size}x{size} is {face_bytes / 2**30:,.1f} GiB "
                         f"per font, more than the {MAX_FACE_BYTES >> 30} GiB held in memory at once; lower --augment or --size")
    if seed < 0:
        raise InputError(f"--seed must be 0 or more, got {seed}")
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")


def _face_identity(face: FontFace) -> dict:
    identity = {"path": str(face.path), "index": face.index, "name": face.name, "sha256": face.sha256()}
    return {**identity, "parts": len(face.parts)} if face.parts else identity


def _face_provenance(result: FaceResult) -> dict:
    return {
        **_face_identity(result.face),
        "source": result.source,
        "rendered": result.rendered,
        "missing": len(result.missing),
        "blank": "".join(result.blank),
        "repeated": "".join(result.repeated),
        **({"aliased": "".join(result.aliased)} if result.aliased else {}),
        "duplicate_of": result.duplicate_of,
        **({"damaged": result.damaged} if result.damaged else {}),
    }


class _FaceCollector:
    """Gathers one face's rendered characters, checks them as a whole, writes them."""

    def __init__(self, job: RenderJob, results: list[FaceResult], writer: StoreWriter,
                 aliases: dict[int, list[int]] | None = None, strict: bool = False) -> None:
        self.job = job
        self.strict = strict  # a damaged face is an InputError (so is the only face's damage), not left out
        self.aliases = aliases or {}  # character index of a traditional form -> those of its simplified characters
        self.results = results
        self.writer = writer
        self.position: int | None = None
        self.items: list[tuple[int, bytes | None]] = []
        self.digests: dict[bytes, str] = {}
        self.names: set[str] = set()

    def add(self, position: int, rendered: list[tuple[int, bytes | None]], damage: str | None = None) -> None:
        if position != self.position:
            self.finish()
            self.position = position
        result = self.results[position]
        if damage is not None and result.damaged is None:
            result.damaged = damage
            if self.strict or len(self.results) == 1:
                hint = "; without --strict it would be left out and the other faces rendered" if self.strict else ""
                raise InputError(f"font {result.face.spec} ({result.face.name}) is damaged: {damage}{hint}")
        if result.damaged is None:
            self.items.extend(rendered)

    def finish(self) -> None:
        if self.position is None:
            return
        result = self.results[self.position]
        if result.damaged is not None:  # left out whole: nothing it drew is written
            self.position, self.items = None, []
            return
        characters, plain = self.job.characters, self.job.size * self.job.size
        result.blank = [characters[i] for i, payload in self.items if payload is None]
        drawn = [(i, payload) for i, payload in self.items if payload is not None]
        counts = Counter(payload[:plain] for _, payload in drawn)
        result.repeated = [characters[i] for i, payload in drawn if counts[payload[:plain]] > REPEAT_LIMIT]
        kept = [(i, payload) for i, payload in drawn if counts[payload[:plain]] <= REPEAT_LIMIT]
        if self.aliases:
            bitmaps = {i: payload[:plain] for i, payload in kept}
            aliased = {i for i in bitmaps if any(bitmaps.get(s) == bitmaps[i] for s in self.aliases.get(i, ()))}
            result.aliased = [characters[i] for i, _ in kept if i in aliased]
            kept = [(i, payload) for i, payload in kept if i not in aliased]
        digest = hashlib.sha256()
        for i, payload in kept:
            digest.update(i.to_bytes(4, "little") + payload[:plain])
        key = digest.digest()
        face = result.face
        if key in self.digests:
            result.duplicate_of = self.digests[key]
        elif kept:
            name = face.name if face.name not in self.names else f"{face.name} ({face.path.name}#{face.index})"
            self.names.add(name)
            self.digests[key] = name
            result.source, result.rendered = name, len(kept)
            source = self.writer.add_source(name)
            images = np.frombuffer(b"".join(payload for _, payload in kept), dtype=np.uint8)
            images = images.reshape(-1, self.job.size, self.job.size)
            labels = np.repeat(np.array([i for i, _ in kept], dtype=np.int32), 1 + self.job.augment)
            self.writer.append(images, labels, source)
        self.position, self.items = None, []
