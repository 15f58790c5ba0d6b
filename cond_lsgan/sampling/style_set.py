"""Font styles as noise vectors: the styles file (`cond-lsgan styles`) and noise drawn between its styles.

The generator's noise carries style: the same noise draws the same weight, width and
slant across all characters (docs/style-grid-1000.png). A random noise vector draws
whatever style the noise space holds there; a user who wants a recogniser to read
handwriting-style faces wants glyphs between the styles of the faces they have, and
beyond any single one of them. style_fit.py fits one noise vector per
font face; this module holds what generation needs of them:

- `StyleSet`, the file: one vector per source, the fit's errors, and the sha256 of the
  checkpoint fitted to (the same noise means another style in another generator, so any
  other checkpoint refuses the file). `StyleSet.load` is its only reader. The file is
  kept as safe as a checkpoint (checkpoint.py): a content digest over everything it holds
  is written on save and checked on load, since torch reads changed bytes silently and a
  NaN in one style draws black glyphs with no error; every entry is checked for type and
  shape, on save and on load. Each problem is one line naming the file. Version 1 files
  (before the digest) still load when their entries check out, unchecked by digest, as
  version 1 checkpoints do;
- `mixed_noise`: each glyph's noise on the segment between two different styles, picked
  at random, at a uniformly random point t: z = (1 - t) z_a + t z_b (inside the noise's
  bounds when both ends are). Near the ends it draws the fitted faces themselves; between
  them, styles that none of the faces has; with a reach R > 0, t runs over [-R, 1 + R], past
  both ends, to styles further from the faces than any mix. `cond-lsgan generate --styles FILE
  [--style-reach R]` draws so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor

from ..checkpoint import DamagedCheckpoint, content_digest, file_digest, read_versioned
from ..data_tools_api import InputError, atomic_output

FORMAT = "cond-lsgan styles"
VERSION = 2  # 2: a content digest
KEYS = ("sources", "noise", "checkpoint_sha256", "fit")
REFIT = "fit them again with cond-lsgan styles"  # what every damaged file's message ends with: styles are cheap to refit
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class StyleSet:
    """Fitted styles: one noise vector per source, and how well each draws its face."""

    sources: list[str]
    noise: Tensor  # float32 (S, z_dim), on the CPU
    checkpoint_sha256: str
    fit: list[dict]  # per source: glyphs used, pixel RMSE of the fitted style and the median of random noise

    def save(self, path: str | Path, before_rename: Callable[[], Any] | None = None) -> Path:
        """Write the file atomically, with its content digest. `before_rename` (another output of the
        same command) runs once the file is written but not yet in place, so if it fails no file is left."""
        path = Path(path)
        state = {"format": FORMAT, "version": VERSION, "sources": list(self.sources), "noise": self.noise.detach().cpu(),
                 "checkpoint_sha256": self.checkpoint_sha256, "fit": list(self.fit)}
        problem = _problem(state)
        if problem:  # e.g. a diverged checkpoint whose fit came out NaN: no reader could use the file
            raise InputError(f"{path}: not written: {problem}")
        state["digest"] = content_digest(state)
        with atomic_output(path) as temporary:
            with open(temporary, "wb") as handle:  # a Python file keeps a failed write's OSError (checkpoint.py)
                torch.save(state, handle)
            if before_rename is not None:
                before_rename()
        return path

    @classmethod
    def load(cls, path: str | Path, checkpoint: str | Path | None = None, z_dim: int | None = None) -> "StyleSet":
        """The one reader of styles files: read, check the digest and every entry, and where given, that the
        styles were fitted to `checkpoint` and are `z_dim` long. Any problem is one InputError line."""
        path = Path(path)
        try:
            state = read_versioned(path, "styles file", FORMAT, VERSION, oldest=1, digest_since=2)
        except DamagedCheckpoint as error:
            raise DamagedCheckpoint(f"{error}; {REFIT}") from None
        problem = _problem(state)
        if problem:
            raise DamagedCheckpoint(f"{path}: damaged styles file ({problem}); {REFIT}")
        styles = cls(list(state["sources"]), state["noise"].float(), state["checkpoint_sha256"], list(state["fit"]))
        if z_dim is not None and styles.noise.shape[1] != z_dim:
            raise InputError(f"{path}: styles of {styles.noise.shape[1]}-long noise; this generator takes {z_dim}")
        if checkpoint is not None and styles.checkpoint_sha256 != file_digest(checkpoint):
            raise InputError(f"{path}: these styles were fitted to another checkpoint than {checkpoint} "
                             "(fit them again with cond-lsgan styles --checkpoint)")
        return styles

    def check_mixable(self, path: str | Path) -> None:
        """Mixed noise lies between two different styles: a file of one style cannot be mixed."""
        if len(self.sources) < 2:
            raise InputError(f"{path}: mixing needs at least two fitted styles, the file has {len(self.sources)}")


def _problem(state: dict[str, Any]) -> str | None:
    """What is wrong with a styles file's entries, in a few words, or None."""
    missing = [key for key in KEYS if key not in state]
    if missing:
        return f"no {', '.join(missing)}"
    sources, noise, fit = state["sources"], state["noise"], state["fit"]
    if not (isinstance(sources, list) and sources and all(isinstance(s, str) for s in sources)):
        return "sources is not a list of names"
    if not isinstance(noise, Tensor):
        return f"noise is a {type(noise).__name__}, not a 2-D float tensor"
    if not noise.is_floating_point():
        return f"noise is {noise.dtype}, not a float tensor"
    if noise.dim() != 2 or noise.shape[1] < 1:
        return f"noise has shape {tuple(noise.shape)}, not (sources, z_dim)"
    if len(noise) != len(sources):
        return f"{len(sources)} sources but {len(noise)} rows of noise"
    for source, row in zip(sources, noise):
        if not torch.isfinite(row).all():
            return f"the style of {source!r} holds NaN or inf"
    if not (isinstance(state["checkpoint_sha256"], str) and _SHA256.match(state["checkpoint_sha256"])):
        return "checkpoint_sha256 is not a sha256"
    if not (isinstance(fit, list) and len(fit) == len(sources) and all(isinstance(entry, dict) for entry in fit)):
        return "fit is not one entry per source"
    return None


def check_reach(reach: float) -> None:
    """--style-reach: how far past each end of a segment t may go, as a share of the segment."""
    if not 0.0 <= reach <= 2.0:
        raise InputError(f"--style-reach must be between 0 and 2, got {reach}")


def mixed_noise(styles: Tensor, n: int, rng: torch.Generator, reach: float = 0.0,
                bounds: tuple[float, float] | None = None) -> Tensor:
    """n noise vectors, each at a uniform point t of the line through two different styles (S >= 2, rows of `styles`).

    t is uniform on [-reach, 1 + reach]: with reach 0 on the segment between the two, beyond it
    (styles further from every face than any mix) where reach > 0; `bounds` clamps the result
    to the generator's noise range (`z_bounds`), which a point past the ends can leave.
    """
    count = len(styles)
    first = torch.randint(0, count, (n,), generator=rng, device=styles.device)
    second = (first + torch.randint(1, count, (n,), generator=rng, device=styles.device)) % count  # never the same
    t = torch.rand(n, 1, generator=rng, device=styles.device) * (1.0 + 2.0 * reach) - reach
    z = (1.0 - t) * styles[first] + t * styles[second]
    return z if bounds is None else z.clamp(*bounds)
