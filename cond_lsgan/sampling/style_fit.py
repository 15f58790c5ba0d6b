"""`cond-lsgan styles`: one noise vector per font face of a store, fitted to a trained generator.

For each source (font face), ONE noise vector z minimises the mean squared pixel error
between G(z, c) and that face's glyphs of classes c, over up to `glyphs_per_source` of its
glyphs at once: the same z for every character, so it holds the face's style, not one
glyph. It starts from the best few of `candidates` random vectors and follows Adam; a
generator whose noise is bounded (paper28: U[-1, 1]) keeps z inside those bounds, where
training drew it. Each face's error is reported beside that of random noise on the same
glyphs: a fitted style that draws its face no better than random noise is no style (the
generator never learnt that face). The fit runs in fp32 with the EMA weights. What the
styles are for, and the file they go to: style_set.py.

`--out` and `--sheet` are checked writable before the fit (which takes minutes), and the
sheet is drawn in memory and written while the styles file is still under its temporary
name: a sheet that cannot be written leaves no styles file, and an older one in place.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from ..checkpoint import file_digest
from ..data_tools_api import GlyphSet, InputError, image_grid, read_store, save_png, write_error
from ..models import model_to_pixels, pixels_to_model
from ..runtime import autocast
from .loaded_generator import LoadedGenerator
from .style_set import StyleSet

KEPT_STARTS = 4  # the best random candidates that Adam refines together; the best result wins
LEARNING_RATE = 0.05
SHEET_GLYPHS = 8  # glyphs per face on the sheet: its real glyphs above what its fitted style draws


def pixel_rmse(generated: Tensor, target: Tensor, output_range: str) -> Tensor:
    """Per image (N,): root mean squared difference in 0-255 pixel units."""
    a = model_to_pixels(generated, output_range).float()
    b = model_to_pixels(target, output_range).float()
    return ((a - b) ** 2).flatten(1).mean(1).sqrt()


def fit_styles(loaded, store: GlyphSet, sources: Sequence[str] | None = None, glyphs_per_source: int = 32,
               steps: int = 200, candidates: int = 256, seed: int = 0) -> StyleSet:
    """One noise vector per source of `store` for the generator `loaded` (a LoadedGenerator); see the module docstring."""
    if not loaded.conditional:
        raise InputError("styles are fitted across characters: they need a conditional model")
    for name, value, least in (("--glyphs-per-source", glyphs_per_source, 1), ("--steps", steps, 0),
                               ("--candidates", candidates, 1)):
        if value < least:
            raise InputError(f"{name} must be at least {least}, got {value}")
    if store.image_size != loaded.image_size:
        raise InputError(f"the store has {store.image_size}px images; the generator makes {loaded.image_size}px")
    chosen = list(dict.fromkeys(sources)) if sources else [s for i, s in enumerate(store.sources) if (store.source_ids == i).any()]
    unknown = [s for s in chosen if s not in store.sources]
    if unknown:
        raise InputError(f"no source named {', '.join(map(repr, unknown))} in the store; it has: {', '.join(store.sources)}")
    lookup = {text: index for index, text in enumerate(loaded.classes.text)}
    to_model = np.array([lookup.get(text, -1) for text in store.classes.text], dtype=np.int64)
    rng = np.random.default_rng(seed)
    torch_rng = torch.Generator(loaded.device).manual_seed(seed)
    noise, fit = [], []
    for source in chosen:
        rows = np.flatnonzero((store.source_ids == store.sources.index(source)) & (to_model[store.labels] >= 0))
        if not len(rows):
            raise InputError(f"source {source!r} has no glyphs of the model's {len(loaded.classes)} classes")
        picked = np.sort(rng.choice(rows, min(glyphs_per_source, len(rows)), replace=False))
        target = pixels_to_model(torch.from_numpy(store.images[picked]).to(loaded.device), loaded.generator.output_range)
        labels = torch.from_numpy(to_model[store.labels[picked]]).to(loaded.device)
        z, error, random_error = _fit_one(loaded, target, labels, steps, candidates, torch_rng)
        noise.append(z.cpu())
        fit.append({"source": source, "glyphs": len(picked), "rmse": error, "random_rmse": random_error})
    return StyleSet(chosen, torch.stack(noise), file_digest(loaded.path), fit)


def _errors(loaded, z: Tensor, target: Tensor, labels: Tensor) -> Tensor:
    """(R,) mean squared error of each of R noise vectors drawing all K target glyphs, in the model's range."""
    r, k = len(z), len(target)
    with autocast(loaded.device, loaded.dtype):
        images = loaded.generator(z.repeat_interleave(k, dim=0), labels.repeat(r)).float()
    return ((images - target.repeat(r, 1, 1, 1)) ** 2).view(r, -1).mean(1)


def _fit_one(loaded, target: Tensor, labels: Tensor, steps: int, candidates: int,
             rng: torch.Generator) -> tuple[Tensor, float, float]:
    """The fitted z (z_dim,), its pixel RMSE, and the median pixel RMSE of the random candidates."""
    generator = loaded.generator
    bounds = generator.z_bounds
    starts = generator.sample_z(candidates, rng, loaded.device)
    with torch.no_grad():
        chunk = max(1, 4096 // len(target))
        start_errors = torch.cat([_errors(loaded, starts[i : i + chunk], target, labels) for i in range(0, candidates, chunk)])
        random_rmse = float(torch.cat([_rmse(loaded, starts[i : i + chunk], target, labels)
                                       for i in range(0, candidates, chunk)]).median())
    z = starts[start_errors.argsort()[:KEPT_STARTS]].clone().requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=LEARNING_RATE)
    with torch.enable_grad():
        for _ in range(steps):
            loss = _errors(loaded, z, target, labels).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if bounds is not None:
                with torch.no_grad():
                    z.clamp_(*bounds)
    with torch.no_grad():
        final = _errors(loaded, z, target, labels)
        best = z[final.argmin()].detach()
        return best, float(_rmse(loaded, best[None], target, labels)[0]), random_rmse


def _rmse(loaded, z: Tensor, target: Tensor, labels: Tensor) -> Tensor:
    """(R,) pixel RMSE (0-255) of each noise vector over the K target glyphs."""
    r, k = len(z), len(target)
    with autocast(loaded.device, loaded.dtype):
        images = loaded.generator(z.repeat_interleave(k, dim=0), labels.repeat(r))
    per_image = pixel_rmse(images, target.repeat(r, 1, 1, 1), loaded.generator.output_range)
    return per_image.view(r, k).pow(2).mean(1).sqrt()


def style_sheet(loaded, store: GlyphSet, styles: StyleSet, seed: int = 0):
    """The sheet (a PIL image): for each fitted face, a row of its real glyphs above a row of what its fitted style draws."""
    lookup = {text: index for index, text in enumerate(loaded.classes.text)}
    rng = np.random.default_rng(seed)
    rows, captions = [], []
    for index, source in enumerate(styles.sources):
        candidates = [i for i in np.flatnonzero(store.source_ids == store.sources.index(source))
                      if store.classes.text[store.labels[i]] in lookup]
        picked = np.sort(rng.choice(candidates, min(SHEET_GLYPHS, len(candidates)), replace=False))
        texts = [store.classes.text[store.labels[i]] for i in picked]
        labels = torch.tensor([lookup[t] for t in texts], device=loaded.device)
        z = styles.noise[index].to(loaded.device).expand(len(picked), -1)
        drawn = loaded.render(z, labels)
        pad = SHEET_GLYPHS - len(picked)
        blank = np.zeros((pad, *store.images.shape[1:]), np.uint8)
        rows += [store.images[picked], blank, drawn, blank]
        captions += texts + [""] * pad + [f"{source[:10]}"] + [""] * (SHEET_GLYPHS - 1)
    return image_grid(np.concatenate(rows), captions, SHEET_GLYPHS)


def check_writable(path: str | Path) -> None:
    """The one-line error writing `path` would meet (a folder, under a file, no permission), now rather than after the fit."""
    path = Path(path)
    if path.is_dir():
        raise write_error(path, IsADirectoryError(errno.EISDIR, "")) from None
    folder = path.parent  # atomic_output makes missing folders: the nearest existing one must take them
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise write_error(path, NotADirectoryError(errno.ENOTDIR, "")) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise write_error(path, PermissionError(errno.EACCES, "")) from None


def fit_styles_file(checkpoint: str | Path, data: str | Path, out: str | Path, sources: Sequence[str] | None = None,
                    glyphs_per_source: int = 32, steps: int = 200, seed: int = 0, device: str = "auto",
                    sheet: str | Path | None = None) -> StyleSet:
    """`cond-lsgan styles`: fit the styles of `data`'s faces to the checkpoint's generator (EMA weights, fp32), write
    them, and the sheet where asked: no styles file unless the sheet was written too (see the module docstring)."""
    for target in (out, sheet):
        if target is not None:
            check_writable(target)
    loaded = LoadedGenerator(checkpoint, device, precision="fp32")  # fitting follows gradients: no bf16 rounding
    store = read_store(data)
    styles = fit_styles(loaded, store, sources, glyphs_per_source, steps, seed=seed)
    if sheet is None:
        styles.save(out)
    else:
        image = style_sheet(loaded, store, styles, seed)
        styles.save(out, before_rename=lambda: save_png(image, sheet))
    return styles


def summary_text(styles: StyleSet) -> str:
    """One line per fitted face: how close its style draws it, against random noise."""
    lines = [f"{len(styles.sources)} style(s), pixel RMSE (0-255) of the fitted style vs the median of random noise:"]
    for entry in styles.fit:
        lines.append(f"  {entry['source']:<28} {entry['rmse']:6.1f} vs {entry['random_rmse']:6.1f}  ({entry['glyphs']} glyphs)")
    return "\n".join(lines)
