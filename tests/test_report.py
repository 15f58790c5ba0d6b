"""`cond-lsgan report`: the page of a tiny real run (finished and evaluated, still writing, just
begun), opened in headless Chromium: no console error, no request for anything outside the
file, and every grid, curve and class it should show, counted on the page. Bad input is one
line and exit code 2.

Chromium is Debian's /usr/bin/chromium driven by playwright (no browser download); the
README's test command installs it where it is missing, so this never skips.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, sync_playwright

from cond_lsgan.judge import train_judge_file
from cond_lsgan.evaluation.scoring import evaluate_generator
from helpers import assert_one_line_error, run_module

CHROMIUM = Path("/usr/bin/chromium")
# Chromium on a machine without network: no background connections, no component updates.
CHROMIUM_ARGS = ["--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run"]
STEPS, LOG_EVERY, SAMPLE_EVERY = 24, 2, 4
RUN = ["train.grid_size=16", f"train.steps={STEPS}", f"train.log_every={LOG_EVERY}", f"train.sample_every={SAMPLE_EVERY}",
       "train.checkpoint_every=12"]  # on TINY_RUN
GRID_STEPS = list(range(SAMPLE_EVERY, STEPS + 1, SAMPLE_EVERY))  # 6 grids
METRIC_LINES = STEPS // LOG_EVERY  # 12


@pytest.fixture(scope="module")
def evaluated(digits28, tiny_run, tmp_path_factory) -> Path:
    """A 24-step paper28 run (12 metrics lines, 6 grids), a judge, and the evaluation of the run's last checkpoint."""
    root = tmp_path_factory.mktemp("report")
    result = tiny_run(*RUN, out=root / "run")
    train_judge_file(digits28, root / "judge.pt", steps=30, device="cpu")
    evaluate_generator(result.checkpoint, root / "judge.pt", digits28, root / "eval.json", per_class=6, device="cpu")
    return root


@pytest.fixture(scope="module")
def without_torch(tmp_path_factory) -> Path:
    """A folder whose sitecustomize makes torch unimportable: a report must not need it (a live run's machine is busy)."""
    folder = tmp_path_factory.mktemp("without-torch")
    (folder / "sitecustomize.py").write_text("import sys\nsys.modules['torch'] = None\n")
    return folder


@pytest.fixture(scope="module")
def browser() -> Browser:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install chromium (the README's test command does)"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def report(without_torch: Path, *args: object):
    return run_module("cond_lsgan", "report", *args, extra_path=without_torch, timeout=60)


def open_page(browser: Browser, path: Path) -> tuple[Page, list[str]]:
    """The page loaded with every image decoded, and what went wrong: console errors, script errors, requests."""
    page = browser.new_page()
    problems: list[str] = []
    page.on("console", lambda message: message.type == "error" and problems.append(f"console: {message.text}"))
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.on("request", lambda request: request.url == path.as_uri() or request.url.startswith("data:")
            or problems.append(f"request: {request.url}"))
    page.goto(path.as_uri(), wait_until="load")
    page.wait_for_function("Array.from(document.images).every(image => image.complete)")
    return page, problems


def vertices(page: Page) -> dict[str, int]:
    """Each drawn line (path.series) -> how many points it joins."""
    lines = page.eval_on_selector_all("path.series", "paths => paths.map(p => [p.dataset.series, p.getAttribute('d')])")
    return {name: len(re.findall(r"[ML]", d)) for name, d in lines}


def grid_strip(page: Page) -> list[tuple[str, int, int]]:
    """(caption, decoded width, decoded height) of each grid in the strip."""
    return [tuple(item) for item in page.eval_on_selector_all(
        "figure.grid", "figures => figures.map(f => [f.querySelector('figcaption').textContent, "
                       "f.querySelector('img').naturalWidth, f.querySelector('img').naturalHeight])")]


def png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


@pytest.mark.slow  # a CLI process
def test_the_page_of_an_evaluated_run_shows_every_grid_curve_and_class(evaluated, without_torch, browser, tmp_path):
    out = tmp_path / "report.html"
    result = report(without_torch, evaluated / "run", "--evaluation", evaluated / "eval.json", "--out", out)
    assert result.returncode == 0, result.stderr
    page, problems = open_page(browser, out)
    assert problems == []
    # Every grid, decoded at the size of its PNG; the slider shows the one chosen.
    assert grid_strip(page) == [(f"step {step}", *png_size(evaluated / "run" / "samples" / f"step_{step:07d}.png"))
                                for step in GRID_STEPS]
    assert page.locator(".grid-view-caption").text_content() == f"step {STEPS}"
    page.locator("input.grid-slider").fill("1")
    assert page.locator(".grid-view-caption").text_content() == f"step {GRID_STEPS[1]}"
    assert page.locator("img.grid-view").get_attribute("src") == page.locator("figure.grid img").nth(1).get_attribute("src")
    assert page.locator("img.grid-view").evaluate("image => image.naturalWidth") > 0
    # Curves: losses and speed, a point per metrics line; the evaluation's scatter, a point per class.
    assert page.locator("svg.chart").count() == 3
    assert vertices(page) == {"D loss": METRIC_LINES, "G loss": METRIC_LINES, "images/s": METRIC_LINES}
    assert all(page.locator("svg.chart").nth(i).bounding_box()["width"] > 200 for i in range(3))
    evaluation = json.loads((evaluated / "eval.json").read_text())
    classes = len(evaluation["per_class"])
    assert classes == 10
    assert page.locator("#per-class-chart circle.point").count() == classes
    assert page.locator("table.per-class tbody tr").count() == classes
    # The best and worst classes: evaluate generator's picture, decoded whole.
    assert page.locator("img.best-worst").evaluate("image => [image.naturalWidth, image.naturalHeight]") == list(
        png_size(evaluated / "eval.png"))
    worst = min(evaluation["per_class"], key=lambda row: row["readability"])["readability"]
    assert page.locator("table.per-class tbody tr").first.locator("td").nth(1).text_content() == f"{worst:.4g}"
    # The resolved config, the run's own settings in bold.
    steps_row = page.locator("tr.changed", has=page.locator("td", has_text=re.compile("^steps$")))
    assert steps_row.locator("td").nth(1).text_content() == str(STEPS)
    assert f"{STEPS} of {STEPS}" in page.locator("table.status").text_content()


@pytest.mark.slow  # a CLI process
def test_the_page_of_a_run_still_writing(evaluated, without_torch, browser, tmp_path):
    """A cut last metrics line, grids not written yet, a damaged grid and an atomic write's leftover: all reported, none fatal."""
    run = tmp_path / "run"
    shutil.copytree(evaluated / "run", run)
    with open(run / "metrics.jsonl", "a") as metrics:
        metrics.write('{"step": 26, "d_loss": 0.3')  # the run is writing this line
    for step in (20, 24):
        (run / "samples" / f"step_{step:07d}.png").unlink()
    (run / "samples" / "step_0000028.png").write_bytes((run / "samples" / "step_0000004.png").read_bytes()[:200])
    (run / "samples" / ".step_0000032.png.a1b2c3.tmp").write_bytes(b"half")
    out = run / "report.html"  # inside the run folder: allowed, it is none of the run's files
    result = report(without_torch, run, "--out", out)
    assert result.returncode == 0, result.stderr
    page, problems = open_page(browser, out)
    assert problems == []
    strip = grid_strip(page)
    assert [caption for caption, _, _ in strip] == ["step 4", "step 8", "step 12", "step 16"] and all(width for _, width, _ in strip)
    assert vertices(page) == {"D loss": METRIC_LINES, "G loss": METRIC_LINES, "images/s": METRIC_LINES}
    notes = page.locator("ul.notes").text_content()
    assert "last line of metrics.jsonl is incomplete" in notes and "step_0000028.png is not a readable PNG" in notes
    assert page.locator("#per-class").count() == 0  # no evaluation given


def test_the_page_of_a_run_that_has_just_begun(browser, tmp_path):
    from cond_lsgan.report.run_report import write_run_report

    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock").write_text("pid 1 on host, started now")
    page, problems = open_page(browser, write_run_report(run, tmp_path / "report.html"))
    assert problems == []
    assert page.locator("svg.chart").count() == 2 and page.locator("path.series").count() == 0
    assert page.locator("svg.chart text.empty").all_text_contents() == ["no data yet"] * 2
    assert page.locator("figure.grid").count() == 0 and "no sample grid yet" in page.locator("#grids").text_content()


@pytest.mark.slow  # CLI processes
def test_bad_input_is_one_line_and_exit_2(evaluated, without_torch, tmp_path):
    run = evaluated / "run"
    not_a_run = tmp_path / "notes"
    not_a_run.mkdir()
    (not_a_run / "todo.txt").write_text("")
    damaged = tmp_path / "damaged"
    shutil.copytree(run, damaged, ignore=shutil.ignore_patterns("*.pt", "*.png"))
    (damaged / "config.json").write_text('{"model": ')
    (tmp_path / "cut.json").write_text('{"per_class": [')
    out = tmp_path / "out.html"
    cases = [
        ((tmp_path / "nope", "--out", out), "run folder not found: "),
        ((evaluated / "eval.json", "--out", out), "eval.json is a file, not a run folder"),
        ((not_a_run, "--out", out), "is not a run folder of cond-lsgan train"),
        ((damaged, "--out", out), "config.json: not valid JSON"),
        ((run, "--evaluation", tmp_path / "missing.json", "--out", out), "evaluation report not found: "),
        ((run, "--evaluation", tmp_path / "cut.json", "--out", out), "cut.json: not the JSON report of cond-lsgan evaluate generator"),
        ((run, "--evaluation", run / "config.json", "--out", out), "config.json: not a report of cond-lsgan evaluate generator"),
        ((run, "--out", run / "metrics.jsonl"), "would write into the run folder"),
    ]
    for args, message in cases:
        assert_one_line_error(report(without_torch, *args), "cond-lsgan", message)
        assert not out.exists()


@pytest.mark.slow  # a CLI process
def test_evaluate_generator_writes_the_same_sections_as_a_page(evaluated, digits28, browser, tmp_path):
    page_path = tmp_path / "eval.html"
    result = run_module("cond_lsgan", "evaluate", "generator", "--checkpoint", evaluated / "run" / "checkpoints" / "step_0000024.pt",
                        "--judge", evaluated / "judge.pt", "--data", digits28, "--out", tmp_path / "eval.json",
                        "--per-class", "6", "--device", "cpu", "--html", page_path)
    assert result.returncode == 0, result.stderr
    page, problems = open_page(browser, page_path)
    assert problems == []
    assert page.locator("#per-class-chart circle.point").count() == page.locator("table.per-class tbody tr").count() == 10
    assert page.locator("img.best-worst").evaluate("image => [image.naturalWidth, image.naturalHeight]") == list(
        png_size(tmp_path / "eval.png"))
    assert page.locator("figure.grid").count() == 0  # no run on this page


@pytest.mark.slow  # CLI processes
def test_experiment_mog_writes_its_folder_as_a_page(browser, tmp_path):
    quick = ["train.steps=40", "train.sample_every=20", "train.batch_size=64", "model.z_dim=16", "model.width=0.25"]
    page_path = tmp_path / "mog.html"
    for loss in ("lsgan", "bce"):  # two runs into one folder; the page shows both
        result = run_module("cond_lsgan", "experiment", "mog", "--loss", loss, "--seeds", "0-1", "--out", tmp_path / "mog",
                            "--html", page_path, *quick)
        assert result.returncode == 0, result.stderr
    page, problems = open_page(browser, page_path)
    assert problems == []
    assert page.locator("table.summary tbody tr").count() == 2
    lines = page.eval_on_selector_all("path.series", "paths => paths.map(p => [p.dataset.series, p.getAttribute('d')])")
    assert [name for name, _ in lines] == ["LSGAN a=0 b=1 c=1", "regular GAN"] * 2  # two charts, a line per loss
    assert [len(re.findall(r"[ML]", d)) for _, d in lines] == [3] * 4  # steps 0, 20 and 40
    assert page.locator("img.compare").evaluate("image => image.naturalWidth") == png_size(tmp_path / "mog" / "compare.png")[0]
    assert page.locator("figure.seed img").count() == 4
    assert all(width > 0 for width in page.eval_on_selector_all("figure.seed img", "images => images.map(i => i.naturalWidth)"))
