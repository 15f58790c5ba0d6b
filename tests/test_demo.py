"""`cond-lsgan demo` end to end, shortened to a few steps."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cond_lsgan.checkpoint import load_checkpoint
from cond_lsgan.demo import DEMO_AUGMENT, DEMO_CHARACTERS, run_demo
from data_tools.errors import InputError
from data_tools.store import read_store
from helpers import assert_mentions


@pytest.mark.slow  # renders the demo's glyphs and trains
def test_demo_writes_data_run_and_grid(tmp_path, capsys):
    grid = run_demo(tmp_path / "demo", steps=2)
    assert grid == tmp_path / "demo" / "grid.png"
    data = read_store(tmp_path / "demo" / "glyphs.h5")
    assert data.classes.text == list(DEMO_CHARACTERS)  # a class per character, in order
    classes = len(data.classes.text)
    width, height = Image.open(grid).size
    assert width == 8 * 58 + 2 and height > classes * 58  # a captioned row of 8 per character
    counts = np.bincount(data.labels, minlength=classes)
    assert counts.min() == counts.max() == len(data.sources) * (DEMO_AUGMENT + 1)  # every face, every variant
    checkpoint = tmp_path / "demo" / "run" / "checkpoints" / "step_0000002.pt"
    assert load_checkpoint(checkpoint)["classes"]["text"] == data.classes.text  # the model was trained on every character
    printed = capsys.readouterr().out
    assert str(grid) in printed and "3/3" in printed


def test_demo_without_cjk_fonts_says_what_to_install(tmp_path, monkeypatch):
    import cond_lsgan.demo as demo

    monkeypatch.setattr(demo, "resolve_faces", lambda *args, **kwargs: (_ for _ in ()).throw(InputError("no face")))
    with pytest.raises(InputError) as refused:
        demo.run_demo(tmp_path / "demo", steps=1)
    assert_mentions(str(refused.value), "no CJK font found", "pip install 'cond-lsgan[fonts]'")
    assert not (tmp_path / "demo" / "glyphs.h5").exists()
