"""`cond-lsgan demo` end to end, shortened to a few steps; the README's commands are the CI's."""

from __future__ import annotations

import subprocess

import numpy as np
from PIL import Image

from cond_lsgan.demo import DEMO_IMAGES, run_demo
from data_tools.store import read_store
from helpers import REPO_ROOT


def test_demo_writes_data_run_and_grid(tmp_path, capsys):
    grid = run_demo(tmp_path / "demo", steps=2)
    assert grid == tmp_path / "demo" / "grid.png"
    assert Image.open(grid).size == (8 * 66 + 2, 8 * 66 + 2)  # 64 samples, 32 px at scale 2
    data = read_store(tmp_path / "demo" / "digits.h5")
    assert len(data) == DEMO_IMAGES and data.classes.text == [str(d) for d in range(10)]
    assert np.bincount(data.labels).tolist() == [DEMO_IMAGES // 10] * 10
    assert (tmp_path / "demo" / "run" / "checkpoints" / "step_0000002.pt").is_file()
    printed = capsys.readouterr().out
    assert str(grid) in printed and "3/3" in printed


def test_ci_runs_the_readme_test_command():
    extracted = subprocess.run(
        ["bash", "-c", "awk '/<!-- test-command -->/ {found = 1; next} found && /^```/ {if (inside) exit; inside = 1; next} inside {print}' README.md"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert extracted == "python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[test]' && python -m pytest -q"
    assert "<!-- test-command -->" in (REPO_ROOT / ".ci" / "run").read_text()
