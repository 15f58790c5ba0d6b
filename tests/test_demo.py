"""`cond-lsgan demo` end to end, shortened to a few steps."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cond_lsgan.demo import DEMO_AUGMENT, DEMO_CHARACTERS, run_demo
from data_tools.errors import InputError
from data_tools.store import read_store


@pytest.mark.slow  # renders the demo's glyphs and trains
def test_demo_writes_data_run_and_grid(tmp_path, capsys):
    grid = run_demo(tmp_path / "demo", steps=2)
    assert grid == tmp_path / "demo" / "grid.png"
    width, height = Image.open(grid).size
    assert width == 8 * 58 + 2 and height > 39 * 58  # a captioned row of 8 per character
    data = read_store(tmp_path / "demo" / "glyphs.h5")
    assert data.classes.text == list(DEMO_CHARACTERS) and len(set(DEMO_CHARACTERS)) == 39
    counts = np.bincount(data.labels, minlength=39)
    assert counts.min() == counts.max() == len(data.sources) * (DEMO_AUGMENT + 1)  # every face, every variant
    assert (tmp_path / "demo" / "run" / "checkpoints" / "step_0000002.pt").is_file()
    printed = capsys.readouterr().out
    assert str(grid) in printed and "3/3" in printed


def test_demo_without_cjk_fonts_says_what_to_install(tmp_path, monkeypatch):
    import cond_lsgan.demo as demo

    monkeypatch.setattr(demo, "resolve_faces", lambda *args, **kwargs: (_ for _ in ()).throw(InputError("no face")))
    with pytest.raises(InputError, match=r"no CJK font found: install one with `pip install 'cond-lsgan\[fonts\]'`"):
        demo.run_demo(tmp_path / "demo", steps=1)
    assert not (tmp_path / "demo" / "glyphs.h5").exists()
