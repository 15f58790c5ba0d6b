"""The shipped configs (TOML), installed as the package `cond_lsgan.configs`.

`shipped_config("mog8.toml")` gives a file's path in an installed copy as in the source tree.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def shipped_config(name: str) -> Path:
    """The path of the shipped config file `name` (e.g. "mog8.toml")."""
    return Path(str(files(__name__) / name))
