"""`cond-lsgan demo`: the whole path on built-in defaults, in a few minutes on a laptop CPU.

It renders the first 39 distinct characters of the Lanting Xu (永和九年...) from every
installed CJK font face with seeded augmentation, trains a narrow conditional paper28
model on them with the shipped configs/demo.toml, and writes a grid with one row per
character, printing where everything went. Without a CJK font it says what to install.
"""

from __future__ import annotations

from pathlib import Path

from .config import load_config
from .configs import shipped_config
from .data_tools_api import InputError, format_report, render_glyphs, resolve_faces
from .sampling.generate import sample_grid
from .training.loop import train

DEMO_CHARACTERS = "永和九年岁在癸丑暮春之初会于山阴兰亭修禊事也群贤毕至少长咸集此地有崇峻岭茂林竹"
DEMO_AUGMENT = 15  # jittered variants per glyph, so a few fonts still give varied data
NO_FONT = ("no CJK font found: install one with `pip install 'cond-lsgan[fonts]'` (Noto Sans/Serif SC, "
           "WenQuanYi Micro Hei) or your system's package (e.g. apt-get install fonts-noto-cjk)")


def run_demo(out: str | Path, steps: int | None = None) -> Path:
    """Render data, train, write `<out>/grid.png`; returns the grid's path."""
    out = Path(out)
    config = load_config(shipped_config("demo.toml"))
    if steps is not None:
        config.train.steps = steps
    try:
        faces, left_out = resolve_faces([], True, DEMO_CHARACTERS, min_coverage=1.0)
    except InputError:
        raise InputError(NO_FONT) from None
    data = out / "glyphs.h5"
    print(f"1/3 rendering {len(DEMO_CHARACTERS)} characters from the installed CJK fonts, "
          f"{DEMO_AUGMENT + 1} variants each -> {data}")
    report = render_glyphs(data, DEMO_CHARACTERS, faces, size=28, augment=DEMO_AUGMENT, seed=config.train.seed,
                           charset_name="demo", left_out=left_out)
    print("    " + format_report(report).replace("\n", "\n    "))
    print(f"2/3 training {config.model.arch} (width {config.model.width}) for {config.train.steps} steps -> {out / 'run'}")
    result = train(config, data, out / "run", resume="auto")
    grid = sample_grid(result.checkpoint, out / "grid.png", n=8, chars=DEMO_CHARACTERS)
    print(f"3/3 generated characters, one row per character (its label under each image): {grid}")
    print(f"    checkpoint {result.checkpoint}; training metrics {out / 'run' / 'metrics.jsonl'}; "
          f"grids over time in {out / 'run' / 'samples'}")
    print(f"    more: cond-lsgan sample --checkpoint {result.checkpoint} --chars 永和 --out more.png")
    return grid
