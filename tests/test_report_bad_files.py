"""`cond-lsgan report` on run files that hold values it cannot use: each is noted on the page and
the rest still drawn, exit code 0, never a traceback.

The run folders are written by hand (no training: these tests take seconds): a config.json,
metrics.jsonl lines, real PNG grids, an evaluation report of the keys and types
`evaluate generator` writes (scoring.py). Each bad value is written as a file would hold
it: a step of 400 digits, NaN and Infinity as Python's json writes and reads them, a PNG
whose header claims 20000 x 20000 pixels. Pages are opened in headless Chromium as in
test_report.py: no console error (an unescaped string would run or break markup and
show there), and the good curve points, grids and rows counted on the page.
"""

from __future__ import annotations

import io
import json
import re
import struct
import warnings
import zlib
from pathlib import Path

import pytest
from PIL import Image

from cond_lsgan.config import Config
from cond_lsgan.report.evaluation import write_evaluation_page
from cond_lsgan.report.run_report import write_run_report
from helpers import run_module
from test_report import browser, grid_strip, open_page, vertices  # noqa: F401 (browser: the fixture)

STEPS = 24
HUGE = "9" * 400  # a whole number far past any float
HOSTILE = '<img src=x onerror="document.title=1">&amp;</td>'  # markup a page would run or break on, unescaped


def grid_png(width: int = 40, height: int = 30, shade: int = 128) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height), shade).save(buffer, "PNG")
    return buffer.getvalue()


def claimed_size_png(width: int, height: int) -> bytes:
    """A tiny PNG whose IHDR (with its CRC) claims `width` x `height` pixels: a decompression bomb's header."""
    data = bytearray(grid_png())
    header = struct.pack(">II", width, height) + bytes(data[24:29])  # bit depth, colour type, ... kept
    data[16:29] = header
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + header))
    return bytes(data)


def metrics_line(step: int, **values: object) -> str:
    return json.dumps({"step": step, "d_loss": 0.5, "g_loss": 0.25, "bad_steps": 0, "images_per_s": 100.0,
                       "time": 1.7e9, **values})


def make_run(folder: Path, config: object = None, metrics: list[str] | None = None,
             grids: dict[int, bytes] | None = None) -> Path:
    """A run folder: config.json (the defaults for a 24-step run unless given), metrics.jsonl, samples/step_*.png."""
    if config is None:
        config = Config().to_dict()
        config["train"]["steps"] = STEPS
    (folder / "samples").mkdir(parents=True)
    (folder / "config.json").write_text(config if isinstance(config, str) else json.dumps(config))
    lines = metrics if metrics is not None else [metrics_line(step) for step in range(2, STEPS + 1, 2)]
    (folder / "metrics.jsonl").write_text("".join(line + "\n" for line in lines))
    for step, png in (grids if grids is not None else {4: grid_png(), 8: grid_png()}).items():
        (folder / "samples" / f"step_{step:07d}.png").write_bytes(png)
    return folder


def page_of(browser, run: Path, evaluation: Path | None = None):
    page, problems = open_page(browser, write_run_report(run, run.parent / "report.html", evaluation))
    assert problems == []
    return page


def run_notes(page) -> str:
    return page.locator("#run ul.notes").text_content()


def test_metrics_values_that_cannot_be_drawn_are_left_out_and_counted(browser, tmp_path):
    lines = [metrics_line(2), metrics_line(4, d_loss=1.7e308), metrics_line(6, g_loss=-1.7e308),
             metrics_line(8, d_loss=float("nan"), g_loss=float("inf"), images_per_s="fast"),  # written as NaN, Infinity
             f'{{"step": {HUGE}, "d_loss": 0.5}}', f'{{"step": {"9" * 5000}, "d_loss": 0.5}}',  # past float; past int parsing
             '{"step": -3, "d_loss": 0.5}', '{"step": true, "d_loss": 0.5}', "[" * 100_000,
             metrics_line(10, bad_steps=int(HUGE)), metrics_line(12, time=1e300)]
    page = page_of(browser, make_run(tmp_path / "run", metrics=lines))
    # Steps 2..12 are six points; what cannot be drawn leaves a gap in its own line only.
    assert vertices(page) == {"D loss": 4, "G loss": 4, "images/s": 5}
    assert page.locator("svg.chart").count() == 2  # the bad_steps chart: its only non-zero value is not drawable
    notes = run_notes(page)
    assert "3 lines of metrics.jsonl whose step is not a whole number from 0 to" in notes
    assert "2 unreadable lines of metrics.jsonl left out" in notes  # 5000 digits, nested 100,000 deep
    assert "6 values of metrics.jsonl left out of the curves (not finite numbers within ±1e+300)" in notes
    for value in ("d_loss at step 4: 1.7e+308", "g_loss at step 6: -1.7e+308", "d_loss at step 8: nan", "g_loss at step 8: inf",
                  "images_per_s at step 8: 'fast'", "bad_steps at step 10: 9999"):
        assert value in notes
    assert "the time of the last metrics line (1e+300) is not a time: not shown" in notes
    status = page.locator("table.status").text_content()
    assert f"12 of {STEPS}" in status and "last logged" not in status


def test_a_nan_time_is_noted(browser, tmp_path):
    page = page_of(browser, make_run(tmp_path / "run", metrics=[metrics_line(2, time=float("nan"))]))
    assert "the time of the last metrics line (nan) is not a time: not shown" in run_notes(page)
    assert vertices(page) == {"D loss": 1, "G loss": 1, "images/s": 1}


def test_a_config_of_wrong_types_shows_what_it_can(browser, tmp_path):
    config = Config().to_dict()
    config["train"] = 5
    config["loss"] = ["lsgan"]
    config["model"].update(z_dim="many", width=float("nan"), conditional=1, arch=HOSTILE)
    config[HOSTILE] = {HOSTILE: HOSTILE}
    page = page_of(browser, make_run(tmp_path / "run", config=config))
    notes = run_notes(page)
    assert "config.json: [train] is 5, not a table of settings: not shown" in notes
    assert "config.json: [loss] is ['lsgan'], not a table of settings: not shown" in notes
    assert "config.json: model.z_dim is 'many', not a whole number like its default" in notes
    assert "config.json: model.width is nan, not a finite number like its default" in notes
    assert "config.json: model.conditional is 1, not true or false like its default" in notes
    assert [h.strip("[]") for h in page.locator("#config h3").all_text_contents()] == ["model", HOSTILE]
    z_dim = page.locator("table.config tr", has=page.locator("td", has_text=re.compile("^z_dim$")))
    assert z_dim.locator("td").nth(1).text_content() == "'many'" and z_dim.get_attribute("class") == "changed"
    arch = page.locator("table.config tr", has=page.locator("td", has_text=re.compile("^arch$")))
    assert arch.locator("td").nth(1).text_content() == repr(HOSTILE)
    assert page.locator("#config img").count() == 0 and page.locator("script").count() == 1  # escaped, not markup
    assert page.evaluate("document.title") == "run: training run"
    # Without [train].steps the run's length is unknown: the step alone, and the rest of the page as ever.
    assert page.locator("table.status td", has_text=re.compile("^24$")).count() == 1
    assert vertices(page) == {"D loss": 12, "G loss": 12, "images/s": 12}
    assert [caption for caption, _, _ in grid_strip(page)] == ["step 4", "step 8"]


@pytest.mark.parametrize("config, shown", [("[1, 2]", "config.json is [1, 2], not a table of sections: not shown"),
                                           ('{"train": {"steps": true}}', "config.json: train.steps is true, not a whole number"),
                                           ('{"\\ud800": {"\\udc80": "\\udfff"}}', None)])
def test_a_config_that_is_no_table_or_holds_no_text(browser, tmp_path, config, shown):
    page = page_of(browser, make_run(tmp_path / "run", config=config))
    if shown:
        assert shown in run_notes(page)
    assert page.locator("table.status td", has_text=re.compile("^24$")).count() == 1  # no "of" a length
    assert vertices(page)["D loss"] == 12 and len(grid_strip(page)) == 2


def test_grids_too_large_or_cut_are_noted_and_the_others_shown(browser, tmp_path):
    pixels_limit = Image.MAX_IMAGE_PIXELS
    grids = {4: grid_png(shade=60), 8: claimed_size_png(20000, 20000),  # past Pillow's DecompressionBombError
             12: claimed_size_png(10000, 10000),  # past its DecompressionBombWarning only
             16: grid_png()[:60], 20: grid_png()[:8], 24: grid_png(50, 20, shade=200)}
    run = make_run(tmp_path / "run", grids=grids)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a DecompressionBombWarning would be an exception here
        page = page_of(browser, run)
    assert Image.MAX_IMAGE_PIXELS == pixels_limit
    assert grid_strip(page) == [("step 4", 40, 30), ("step 24", 50, 20)]
    notes = run_notes(page)
    assert "step_0000008.png claims 20,000 × 20,000 pixels, more than a sample grid has (at most 67,108,864): left out" in notes
    assert "step_0000012.png claims 10,000 × 10,000 pixels" in notes
    assert "step_0000016.png is not a readable PNG (" in notes and "step_0000020.png is not a readable PNG (" in notes
    assert "BytesIO" not in notes
    assert page.locator(".grid-view-caption").text_content() == "step 24"


def evaluation_report(classes: int = 4) -> dict:
    """An `evaluate generator` report of the keys and types scoring.py writes."""
    rows = [{"class": str(c), "judge_index": c, "generated": 6, "real": 6, "readability": 0.5 + c / 10, "confidence": 0.6,
             "real_readability": 0.9, "judge_fid": 3.0 + c, "diversity_generated": 1.0, "diversity_real": 1.2,
             "diversity_ratio": 0.8 + c / 20, "collapsed": False, "pixel_diversity_ratio": 0.9, "nearest_real": 2.0,
             "real_nearest_real": 2.1, "nearest_real_pixel_rms": 0.2, "copies": 0} for c in range(classes)]
    return {"checkpoint": "run/checkpoints/step_0000024.pt", "weights": "ema", "step": 24, "judge": "judge.pt",
            "data": "digits.h5", "judge_held_out_accuracy": 0.95, "seed": 0, "conditional": True, "generated_images": 6 * classes,
            "real_images": 6 * classes, "judge_fid": 4.5, "readability": 0.6, "real_readability": 0.9, "confidence": 0.6,
            "prediction_balance": {"entropy": 1.3, "kl_to_uniform_over_requested": 0.1, "classes_predicted": classes,
                                   "most_predicted": "1", "most_predicted_share": 0.3},
            "classes": classes, "mean_class_readability": 0.65,
            "diversity": {"generated": 1.0, "real": 1.2, "mean_ratio": 0.85, "pixel_mean_ratio": 0.9, "collapsed_share": 0.0,
                          "collapsed_classes": []},
            "nearest_real": {"generated": 2.0, "real_leave_one_out": 2.1, "pixel_rms": 0.2, "copies": 0, "copy_share": 0.0},
            "per_class": rows, "seconds": 1.5}


def summary_figures(page) -> dict[str, str]:
    return dict(page.eval_on_selector_all("table.summary tbody tr", "rows => rows.map(r => "
                                          "[r.cells[0].textContent, r.cells[1].textContent])"))


def test_an_evaluation_of_wrong_types_is_noted_and_the_rest_drawn(browser, tmp_path):
    evaluated = evaluation_report()
    evaluated.update(diversity=[1], nearest_real="x", readability=1.7e308, real_readability=-0.5, judge_fid=float("nan"),
                     prediction_balance=5, step=HOSTILE, judge=HOSTILE, generated_images=True, classes="ten")
    evaluated["per_class"][1].update(readability="x", copies=-1, collapsed="no", judge_fid=float("inf"))
    evaluated["per_class"][2].update({"class": HOSTILE, "diversity_ratio": int(HUGE)})
    (tmp_path / "eval.json").write_text(json.dumps(evaluated))
    page = page_of(browser, make_run(tmp_path / "run"), tmp_path / "eval.json")
    notes = page.locator("#evaluation ul.notes").text_content()
    for text in ("diversity is [1], not a table of figures: not shown", "nearest_real is 'x', not a table of figures: not shown",
                 "readability is 1.7e+308, not a share from 0 to 1: not shown",
                 "real_readability is -0.5, not a share from 0 to 1: not shown",
                 "judge_fid is nan, not a finite number of 0 or more: not shown",
                 "prediction_balance is 5, not a table of figures: not shown", "generated_images is true, not a whole number of 0 or more: not shown",
                 "classes is 'ten', not a whole number of 0 or more: not shown", f"step is {repr(HOSTILE)[:39]}…, not a whole number", "5 values of per_class not shown",
                 "readability of class 1: 'x'", "copies of class 1: -1", "collapsed of class 1: 'no'", "judge_fid of class 1: inf",
                 f"diversity_ratio of class {HOSTILE[:39]}…: 9999"):
        assert text in notes, text
    figures = summary_figures(page)
    assert figures["judge"] == HOSTILE and figures["data"] == "digits.h5" and figures["mean class readability"] == "65.0%"
    assert "readability" not in figures and "step" not in figures and "diversity / real (features)" not in figures and "most read as" not in figures
    # The chart: a point for each class with both a readability and a diversity (classes 0 and 3).
    assert page.locator("#per-class-chart circle.point").count() == 2
    assert page.locator("table.per-class tbody tr").count() == 4
    assert page.locator("table.per-class tbody tr").first.locator("td").first.text_content() == "1"  # no readability: last
    assert page.locator("#per-class img").count() == 0 and page.locator("script").count() == 1
    assert vertices(page) == {"D loss": 12, "G loss": 12, "images/s": 12}  # the run's own sections as ever


def test_an_evaluation_page_alone_notes_the_same(browser, tmp_path):
    evaluated = evaluation_report()
    evaluated["diversity"] = {"mean_ratio": "high", "pixel_mean_ratio": 0.9, "collapsed_share": 2.0}
    evaluated["nearest_real"] = {"copies": 1.5}
    (tmp_path / "eval.json").write_text(json.dumps(evaluated))
    page, problems = open_page(browser, write_evaluation_page(tmp_path / "eval.json", tmp_path / "eval.html"))
    assert problems == []
    notes = page.locator("#evaluation ul.notes").text_content()
    assert "diversity.mean_ratio is 'high', not a finite number of 0 or more: not shown" in notes
    assert "diversity.collapsed_share is 2.0, not a share from 0 to 1: not shown" in notes
    assert "nearest_real.copies is 1.5, not a whole number of 0 or more: not shown" in notes
    figures = summary_figures(page)
    assert figures["diversity / real (pixels)"] == "0.9" and figures["readability"] == "60.0%"
    assert page.locator("#per-class-chart circle.point").count() == 4


@pytest.mark.parametrize("text, message", [('{"per_class": [], "readability": 0.5, "x": %s}' % ("9" * 5000), "not the JSON report"),
                                           ("[" * 100_000, "not the JSON report")])
def test_an_evaluation_that_cannot_be_parsed_is_one_line(tmp_path, text, message):
    from cond_lsgan.data_tools_api import InputError

    (tmp_path / "eval.json").write_text(text)
    with pytest.raises(InputError, match=message):
        write_evaluation_page(tmp_path / "eval.json", tmp_path / "eval.html")
    assert not (tmp_path / "eval.html").exists()


@pytest.mark.slow  # a CLI process
def test_the_cli_warns_in_one_line_and_exits_0(tmp_path):
    run = make_run(tmp_path / "run", config='{"train": 5}', metrics=[metrics_line(2), f'{{"step": {HUGE}}}'],
                   grids={4: grid_png(), 8: claimed_size_png(20000, 20000)})
    result = run_module("cond_lsgan", "report", run, "--out", tmp_path / "report.html", timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote {tmp_path / 'report.html'}\n"
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("cond-lsgan: warning: 3 things in the run's files could not be used; the page notes them: "), lines[0]
    page = (tmp_path / "report.html").read_text()
    assert "[train] is 5, not a table of settings" in page and page.count('class="grid"') == 1
