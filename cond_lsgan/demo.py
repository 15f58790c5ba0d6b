"""`cond-lsgan demo`: the whole path on built-in data, in a few minutes on a laptop CPU.

It makes a small synthetic digit set (no download, no fonts needed), trains the seed's
MNIST LSGAN (`seed32`) on it with the embedded config below, and writes a grid of
generated digits, printing where everything went. The config is also shipped as
configs/demo.toml (a test keeps the two equal).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from data_tools.store import write_store
from data_tools.synthetic import synthetic_digits

from .config import config_from_dict
from .generate import sample_grid
from .training import train

DEMO_CONFIG = """\
# The demo: the seed's MNIST LSGAN on synthetic digits, sized to train in a few minutes on 2 CPU cores.
[model]
arch = "seed32"
z_dim = 100

[loss]
kind = "lsgan"

[train]
steps = 800
batch_size = 64
ema_decay = 0.99
seed = 0
log_every = 50
sample_every = 200
checkpoint_every = 400
"""
DEMO_IMAGES = 4000


def run_demo(out: str | Path, steps: int | None = None) -> Path:
    """Build data, train, write `<out>/grid.png`; returns the grid's path."""
    out = Path(out)
    config = config_from_dict(tomllib.loads(DEMO_CONFIG), origin="demo config")
    if steps is not None:
        config.train.steps = steps
    data = out / "digits.h5"
    print(f"1/3 making {DEMO_IMAGES} synthetic digit images -> {data}")
    write_store(data, synthetic_digits(DEMO_IMAGES, size=32, seed=config.train.seed))
    print(f"2/3 training {config.model.arch} for {config.train.steps} steps -> {out / 'run'}")
    result = train(config, data, out / "run", resume="auto")
    grid = sample_grid(result.checkpoint, out / "grid.png", n=64)
    print(f"3/3 generated digits: {grid}")
    print(f"    checkpoint {result.checkpoint}; training metrics {out / 'run' / 'metrics.jsonl'}; "
          f"grids over time in {out / 'run' / 'samples'}")
    return grid
