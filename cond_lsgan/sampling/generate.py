"""Sampling from a checkpoint alone: grids (PNG), labelled glyph stores (HDF5), PNG folders.

The generator is rebuilt from the checkpoint (loaded_generator.py), so no training data
is needed; the EMA weights are used by default. A conditional model generates the
classes asked for, by character (`--chars 永和`; a class text of several characters is
named whole, `--chars a,Greek/character01`), by index (`--classes 0,5-9`) or all of them; the output keeps the model's whole class table, so generated sets merge with real
ones by class text. An unconditional model writes one class, "generated". Images are
generated in class-major order from one noise stream seeded by `seed`, so the same
arguments give the same images; with `--styles` (style_set.py) each image's noise is drawn
between two styles fitted to fonts instead. Generation runs in the checkpoint's
`train.precision` (bf16 where the device has it natively, under "auto") unless a
precision is given. A `--batch-size` whose noise, images and activations the device
cannot hold is refused before any is made (memory.py). What to generate is one
`GenerateRequest`, which both writers (`generate_store`, `generate_pngs`) take.
"""

from __future__ import annotations

import csv
import os
import re
import secrets
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image

from ..data_tools_api import (SEED_LIMIT, ClassTable, InputError, StoreWriter, image_grid, make_parent_folder, save_png,
                              write_error)
from ..judge import load_judge
from ..models.embedding import soft_labels
from ..selection import select_classes, spread_classes
from .judge_filter import FilterReport, check_filter_options, filtered_glyphs
from .loaded_generator import LoadedGenerator

UNCONDITIONAL_CLASS = "generated"
MAX_GENERATED = 10_000_000  # images per command (7.8 GB at 28x28); more is a typo, or several runs with other seeds
MAX_GRID_IMAGES = 4096  # images in one sample grid
MAX_SEED = SEED_LIMIT - 1  # the CLI's seed_int range, checked again for library callers


def check_sampling_options(seed: int, batch_size: int = 1) -> None:
    """Reject a seed torch cannot take and a batch size that makes no sense, before any work."""
    if not 0 <= seed <= MAX_SEED:
        raise InputError(f"--seed must be between 0 and {MAX_SEED}, got {seed}")
    if not 1 <= batch_size <= 65536:
        raise InputError(f"--batch-size must be between 1 and 65536, got {batch_size}")


@dataclass(frozen=True)
class GenerateRequest:
    """What `generate_store` and `generate_pngs` generate, whatever they write it to; `cond-lsgan generate`'s options.

    Conditional models: `per_class` images of each class chosen by `chars`, `indices`
    ("0,5-9") or `all_classes`; unconditional models: `per_class` images in all. With
    `judge` and `min_confidence`, only glyphs the judge reads as their label (judge_filter.py,
    up to `max_rounds` of redrawing); with `styles`, noise drawn between fitted styles,
    up to `style_reach` past them (style_set.py). One value, so the writers and what they
    share take the same options once.
    """

    checkpoint: str | Path
    per_class: int
    chars: str | None = None
    indices: str | None = None
    all_classes: bool = False
    seed: int = 0
    batch_size: int = 256
    truncation: float | None = None
    device: str = "auto"
    weights: str = "ema"
    precision: str | None = None
    judge: str | Path | None = None
    min_confidence: float | None = None
    max_rounds: int = 10
    styles: str | Path | None = None
    style_reach: float = 0.0


def _labels_for(loaded: LoadedGenerator, request: GenerateRequest) -> list[int] | None:
    """The label of every image to generate (class-major), or None for an unconditional model."""
    per_class, chars, indices, all_classes = request.per_class, request.chars, request.indices, request.all_classes
    if per_class < 1:
        raise InputError(f"the number of images (per class) must be positive, got {per_class}")
    if per_class > MAX_GENERATED:
        raise InputError(f"at most {MAX_GENERATED:,} images per command, asked for {per_class:,}"
                         + (" per class" if loaded.conditional else ""))
    chosen = chars is not None or indices is not None or all_classes
    if not loaded.conditional:
        if chosen:
            raise InputError("this model is unconditional: it cannot generate chosen classes (use --n)")
        return None
    if not chosen:
        raise InputError("this model is conditional: choose classes with --chars, --classes or --all, and --per-class N")
    classes = select_classes(loaded.classes, chars, indices, all_classes)
    if len(classes) * per_class > MAX_GENERATED:
        raise InputError(f"at most {MAX_GENERATED:,} images per command, asked for {len(classes):,} classes x {per_class:,} "
                         "(split the work into several runs with different --seed)")
    return [c for c in classes for _ in range(per_class)]


def generate_store(request: GenerateRequest, out: str | Path) -> int:
    """Write the images `request` asks for to a glyph store at `out`; returns the count.

    With a judge filter, its per-class counts go into the store's provenance.
    """
    loaded, batches, labels, report = _prepare(request)
    classes = loaded.classes if loaded.conditional else ClassTable([UNCONDITIONAL_CLASS])
    provenance = loaded.provenance("cond-lsgan generate", request.seed, request.truncation)
    if report is not None:
        provenance["judge_filter"] = {"judge": str(request.judge), **report.to_dict()}
    written = 0
    with StoreWriter(out, loaded.image_size, classes, [f"generated:{loaded.run_name}"], provenance) as writer:
        for batch in batches:
            if not len(batch):  # the judge filter kept nothing
                continue
            batch_labels = np.zeros(len(batch)) if labels is None else labels[written : written + len(batch)]
            writer.append(batch, batch_labels, 0)
            written += len(batch)
    return written


def generate_pngs(request: GenerateRequest, out_dir: str | Path) -> int:
    """Write the images `request` asks for as PNGs to DIR/<class index>_<text>/NNNNN.png plus DIR/labels.csv
    (and DIR/judge_filter.csv with a judge filter); returns the count.

    The folder is built under a temporary name and renamed when complete; an existing
    non-empty DIR is never written into.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise InputError(f"{out_dir} already exists and is not an empty folder; choose a new --out")
    loaded, batches, labels, report = _prepare(request)
    names = loaded.classes.text if loaded.conditional else [UNCONDITIONAL_CLASS]
    make_parent_folder(out_dir)
    building = _building_folder(out_dir)
    try:
        rows, counters = [], {}
        flat_labels = labels if labels is not None else [0] * request.per_class
        images = (image for batch in batches for image in batch)
        for label, image in zip(flat_labels, images):
            folder = f"{label}_{_safe_name(names[label])}"
            number = counters.get(label, 0)
            counters[label] = number + 1
            path = Path(folder) / f"{number:05d}.png"
            (building / folder).mkdir(exist_ok=True)
            _save_glyph_png(image, building / path)
            rows.append((path.as_posix(), label, names[label]))
        with open(building / "labels.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["path", "class_index", "class_text"])
            writer.writerows(rows)
        if report is not None:  # what the judge filter drew and kept of each class
            with open(building / "judge_filter.csv", "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["class_text", "drawn", "kept"])
                writer.writerows(zip(report.classes, report.drawn.tolist(), report.kept.tolist()))
        if out_dir.exists():
            out_dir.rmdir()
        os.replace(building, out_dir)
    except BaseException as error:
        shutil.rmtree(building, ignore_errors=True)
        if isinstance(error, OSError):  # a full disk, a read-only folder: nothing else here writes files
            raise write_error(out_dir, error) from None
        raise
    return len(rows)


def _prepare(request: GenerateRequest):
    """What `generate_store` and `generate_pngs` share: options checked, generator loaded, memory checked,
    then `_glyphs`. Returns (loaded generator, batches, labels, judge filter report or None)."""
    r = request
    check_sampling_options(r.seed, r.batch_size)
    check_filter_options(r.judge, r.min_confidence, r.max_rounds)
    loaded = LoadedGenerator(r.checkpoint, r.device, r.weights, r.precision)
    labels = _labels_for(loaded, r)
    if r.styles is not None:
        if r.truncation is not None:
            raise InputError("--truncation and --styles do not go together: styled noise is drawn between fitted styles")
        loaded.use_styles(r.styles, r.style_reach)
    elif r.style_reach:
        raise InputError("--style-reach goes with --styles: it reaches past the fitted styles")
    loaded.check_memory(r.batch_size)
    return loaded, *_glyphs(loaded, labels, r)


def _glyphs(loaded: LoadedGenerator, labels: list[int] | None,
            r: GenerateRequest) -> tuple[Iterator[np.ndarray] | list[np.ndarray], list[int] | None, FilterReport | None]:
    """The uint8 batches to write, the label of each image, and the judge filter's report (None without a judge)."""
    if r.judge is None:
        return loaded.images(labels, r.per_class, r.seed, r.batch_size, r.truncation), labels, None
    if not loaded.conditional:
        raise InputError("--judge filters glyphs by their label: it needs a conditional model")
    judge = load_judge(r.judge, loaded.device)
    images, kept, report = filtered_glyphs(loaded, list(dict.fromkeys(labels)), r.per_class, judge, r.min_confidence,
                                           r.seed, r.batch_size, r.truncation, r.max_rounds)
    print(report.summary(), file=sys.stderr)
    if report.warning():
        print(report.warning(), file=sys.stderr)
    return [images], kept.tolist(), report


def _save_glyph_png(image: np.ndarray, path: Path) -> None:
    """One glyph as a greyscale PNG (its folder is renamed into place when all are written)."""
    Image.fromarray(image, mode="L").save(path, format="PNG")


def _building_folder(out_dir: Path) -> Path:
    """A new folder `.<name>.<random>.tmp` beside `out_dir`, made with the user's umask (mkdtemp's 0700 would stay)."""
    for _ in range(100):
        path = out_dir.parent / f".{out_dir.name}.{secrets.token_hex(4)}.tmp"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
        except OSError as error:
            raise write_error(out_dir, error) from None
    raise write_error(out_dir, FileExistsError("no free temporary name beside it"))


def _safe_name(text: str) -> str:
    """A class text usable as part of a folder name on any OS."""
    return re.sub(r'[\\/:*?"<>|\x00-\x1f]', "_", text) or "_"


def sample_grid(checkpoint: str | Path, out: str | Path, n: int = 64, seed: int = 0, device: str = "auto",
                chars: str | None = None, indices: str | None = None, interpolate: str | None = None,
                truncation: float | None = None, weights: str = "ema", precision: str | None = None) -> Path:
    """Write one PNG grid.

    Unconditional: `n` images. Conditional: one row per chosen class (`chars` or `indices`, else up
    to 8 classes spread over the class table) with `n` columns of shared noise; or, with
    `interpolate="A,B"`, `n` rows of noise by 9 columns of soft labels from A to B.
    """
    if not 1 <= n <= MAX_GRID_IMAGES:
        raise InputError(f"--n must be between 1 and {MAX_GRID_IMAGES:,}, got {n}")
    check_sampling_options(seed)
    loaded = LoadedGenerator(checkpoint, device, weights, precision)
    rng = torch.Generator(loaded.device).manual_seed(seed)
    if not loaded.conditional:
        if chars or indices or interpolate:
            raise InputError("this model is unconditional: --chars, --classes and --interpolate need a conditional model")
        images = np.concatenate(list(loaded.images(None, n, seed, truncation=truncation)))
        save_png(image_grid(images), out)
        return Path(out)
    classes = loaded.classes
    if interpolate is not None:
        pair = [c for c in interpolate.split(",") if c]
        if len(pair) != 2:
            raise InputError(f"--interpolate takes two classes, like 永,和; got {interpolate!r}")
        first, second = (classes.index(c) for c in pair)
        if n * 9 > MAX_GRID_IMAGES:
            raise InputError(f"--interpolate shows 9 images per row: --n must be at most {MAX_GRID_IMAGES // 9}, got {n}")
        weights = torch.linspace(0, 1, 9, device=loaded.device)
        z = loaded.noise(n, rng, truncation).repeat_interleave(len(weights), dim=0)
        mix = soft_labels(first, second, weights, len(classes)).repeat(n, 1)
        images = loaded.render(z, mix)
        captions = ([pair[0]] + [f"{w:.2f}" for w in weights[1:-1].tolist()] + [pair[1]]) * n
        columns = len(weights)
    else:
        chosen = chars is not None or indices is not None
        rows = select_classes(classes, chars=chars, indices=indices) if chosen else spread_classes(len(classes), 8)
        if len(rows) * n > MAX_GRID_IMAGES:
            raise InputError(f"a grid of {len(rows):,} rows x {n:,} columns is more than {MAX_GRID_IMAGES:,} images; lower --n")
        z = loaded.noise(n, rng, truncation).repeat(len(rows), 1)
        labels = torch.tensor(rows, device=loaded.device).repeat_interleave(n)
        images = loaded.render(z, labels)
        captions = [classes.text[c] for c in labels.tolist()]
        columns = n
    save_png(image_grid(images, captions, columns), out)
    return Path(out)
