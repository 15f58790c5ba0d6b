"""Font styles as noise vectors: the styles file (`cond-lsgan styles`) and noise drawn between its styles.

The generator's noise carries style: the same noise draws the same weight, width and
slant across all characters (docs/style-grid-1000.png). A random noise vector draws
whatever style the noise space holds there; a user who wants a recogniser to read
handwriting-style faces wants glyphs between the styles of the faces they have, and
beyond any single one of them (issue 17, item 5). style_fit.py fits one noise vector per
font face; this module holds what generation needs of them:

- `StyleSet`, the file: one vector per source, the fit's errors, and the sha256 of the
  checkpoint fitted to (the same noise means another style in another generator, so any
  other checkpoint refuses the file);
- `mixed_noise`: each glyph's noise on the segment between two different styles, picked
  at random, at a uniformly random point t: z = (1 - t) z_a + t z_b (inside the noise's
  bounds when both ends are). Near the ends it draws the fitted faces themselves; between
  them, styles that none of the faces has; with a reach R > 0, t runs over [-R, 1 + R], past
  both ends, to styles further from the faces than any mix. `cond-lsgan generate --styles FILE
  [--style-reach R]` draws so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from .checkpoint import file_digest
from .shared import InputError, atomic_output

FORMAT = "cond-lsgan styles"
VERSION = 1


@dataclass
class StyleSet:
    """Fitted styles: one noise vector per source, and how well each draws its face."""

    sources: list[str]
    noise: Tensor  # float32 (S, z_dim), on the CPU
    checkpoint_sha256: str
    fit: list[dict]  # per source: glyphs used, pixel RMSE of the fitted style and the median of random noise

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        state = {"format": FORMAT, "version": VERSION, "sources": self.sources, "noise": self.noise.cpu(),
                 "checkpoint_sha256": self.checkpoint_sha256, "fit": self.fit}
        with atomic_output(path) as temporary:
            torch.save(state, temporary)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "StyleSet":
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: no such styles file (make one with cond-lsgan styles)")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # a damaged or foreign file: say so in one line
            raise InputError(f"{path}: not a styles file written by cond-lsgan styles ({type(error).__name__})") from None
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise InputError(f"{path}: not a styles file written by cond-lsgan styles")
        if state.get("version") != VERSION:
            raise InputError(f"{path}: styles file version {state.get('version')}, this cond-lsgan reads version {VERSION}")
        return cls(list(state["sources"]), state["noise"].float(), str(state["checkpoint_sha256"]), list(state["fit"]))

    def check_fits(self, generator_path: str | Path, z_dim: int, path: str | Path) -> None:
        """Refuse styles fitted to another checkpoint: the same noise means another style in another generator."""
        if self.noise.shape[1] != z_dim:
            raise InputError(f"{path}: styles of {self.noise.shape[1]}-long noise; this generator takes {z_dim}")
        if self.checkpoint_sha256 != file_digest(generator_path):
            raise InputError(f"{path}: these styles were fitted to another checkpoint than {generator_path} "
                             "(fit them again with cond-lsgan styles --checkpoint)")
        if len(self.sources) < 2:
            raise InputError(f"{path}: mixing needs at least two fitted styles, the file has {len(self.sources)}")


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
