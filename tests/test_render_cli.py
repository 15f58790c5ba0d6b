"""`data-tools charset`, `fonts` and `render` as real subprocesses: outputs, one-line errors, Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import helpers
from data_tools.charsets import gb2312_level1
from data_tools.store import read_store
from fontdata import NOTO_SANS_SC, WQY_MICROHEI, subset_font
from helpers import REPO_ROOT, run_data_tools

pytestmark = pytest.mark.slow  # every test starts the CLI


def assert_one_line_error(result, *fragments: str) -> None:
    helpers.assert_one_line_error(result, "data-tools", *fragments)


def test_charset_to_stdout_and_file(tmp_path):
    result = run_data_tools("charset", "gb2312-1", "--limit", "3")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "啊\n阿\n埃\n"
    assert result.stderr == "3 characters\n"
    out = tmp_path / "set.txt"
    result = run_data_tools("charset", "gb2312-1", "--out", out)
    assert result.returncode == 0, result.stderr
    assert out.read_text(encoding="utf-8").splitlines() == gb2312_level1()
    assert result.stderr == f"3,755 characters written to {out}\n"


def test_charset_from_text(tmp_path):
    text = tmp_path / "mine.txt"
    text.write_text("永和九年\n", encoding="utf-8")
    result = run_data_tools("charset", "--text", text, "--limit", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "永\n和\n"
    text.write_text("永\n和\n永\n", encoding="utf-8")
    assert_one_line_error(run_data_tools("charset", "--text", text), "mine.txt:3:", "duplicate (first on line 1)")
    assert_one_line_error(run_data_tools("charset", "digits", "--text", text), "NAME or --text FILE")


def test_charset_errors():
    assert_one_line_error(run_data_tools("charset", "gb2312-3"), "unknown charset 'gb2312-3'")
    assert_one_line_error(run_data_tools("charset", "digits", "--limit", "11"), "--limit 11 is more than the 10")


def test_fonts_lists_faces_with_coverage(tmp_path):
    partial = subset_font(NOTO_SANS_SC, "0123", tmp_path / "four.otf", "Four Digits")
    result = run_data_tools("fonts", NOTO_SANS_SC, WQY_MICROHEI, partial, "--charset", "digits", "--missing")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{NOTO_SANS_SC}  Noto Sans SC  10/10",
        f"{WQY_MICROHEI}#0  WenQuanYi Micro Hei  10/10",
        f"{WQY_MICROHEI}#1  WenQuanYi Micro Hei Mono  10/10",
        f"{partial}  Four Digits  4/10",
        "    missing: 456789",
    ]
    assert result.stderr == "4 font faces\n"
    result = run_data_tools("fonts", NOTO_SANS_SC, "--charset", "gb2312-1")
    assert result.stdout == f"{NOTO_SANS_SC}  Noto Sans SC  3,755/3,755\n"


def test_fonts_errors(tmp_path):
    junk = tmp_path / "junk.otf"
    junk.write_text("hello")
    assert_one_line_error(run_data_tools("fonts", junk), "junk.otf: not a font file")
    assert_one_line_error(run_data_tools("fonts", NOTO_SANS_SC, "--missing"), "--missing needs --charset")


def test_render_end_to_end(tmp_path):
    charset = tmp_path / "chars.txt"
    charset.write_text("啊阿埃挨哎一\n", encoding="utf-8")
    out = tmp_path / "glyphs.h5"
    result = run_data_tools(
        "render", "--charset", charset, "--font", NOTO_SANS_SC, "--font", f"{WQY_MICROHEI}#0",
        "--size", "32", "--augment", "1", "--workers", "2", "--out", out,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"wrote 24 glyphs (32x32) of 6 classes from 2 face(s) to {out}"
    assert lines[1:] == [f"        6  Noto Sans SC ({NOTO_SANS_SC})", f"        6  WenQuanYi Micro Hei ({WQY_MICROHEI}#0)"]
    glyphs = read_store(out)
    assert glyphs.images.shape == (24, 32, 32) and glyphs.classes.text == list("啊阿埃挨哎一")
    assert glyphs.classes.codepoint[0] == ord("啊")
    assert glyphs.sources == ["Noto Sans SC", "WenQuanYi Micro Hei"]
    np.testing.assert_array_equal(np.bincount(glyphs.labels), [4] * 6)
    provenance = glyphs.provenance
    assert provenance["command"] == "data-tools render" and provenance["charset"] == str(charset)
    assert [(f["path"], f["index"], f["name"], f["rendered"]) for f in provenance["fonts"]] == [
        (str(NOTO_SANS_SC), 0, "Noto Sans SC", 6), (str(WQY_MICROHEI), 0, "WenQuanYi Micro Hei", 6),
    ]
    assert len(provenance["fonts"][0]["sha256"]) == 64
    assert (provenance["size"], provenance["margin"], provenance["augment"], provenance["seed"]) == (32, 2, 1, 0)
    png = tmp_path / "preview.png"
    result = run_data_tools("preview", out, "--out", png, "--n", "8", "--columns", "4")
    assert result.returncode == 0, result.stderr
    assert png.stat().st_size > 0


def test_render_bad_input(tmp_path):
    out = tmp_path / "g.h5"
    base = ("render", "--out", out, "--workers", "1")
    junk = tmp_path / "junk.ttf"
    junk.write_text("hello")
    latin = subset_font(NOTO_SANS_SC, "AB", tmp_path / "ab.otf", "Only AB")
    cases = [
        (("--charset", "gb2312-7", "--font", NOTO_SANS_SC), ("unknown charset 'gb2312-7'",)),
        (("--charset", "digits", "--font", tmp_path / "absent.ttf"), ("font file not found", "absent.ttf")),
        (("--charset", "digits", "--font", junk), ("junk.ttf: not a font file",)),
        (("--charset", "digits", "--font", f"{WQY_MICROHEI}#4"), ("no face #4",)),
        (("--charset", "digits", "--font", WQY_MICROHEI), ("holds 2 faces",)),
        (("--charset", "gb2312-1", "--limit", "5", "--font", latin), ("Only AB", "none of the 5 characters of gb2312-1")),
        (("--charset", "digits", "--font", NOTO_SANS_SC, "--min-coverage", "0.5"), ("--min-coverage applies to --all-fonts and --fonts-in only",)),
        (("--charset", "digits", "--font", NOTO_SANS_SC, "--size", "64", "--margin", "31"), ("--margin 31 leaves no room",)),
    ]
    for arguments, fragments in cases:
        assert_one_line_error(run_data_tools(*base, *arguments), *fragments)
    assert sorted(tmp_path.iterdir()) == sorted([junk, latin])  # no output, no temporary file


def test_ctrl_c_stops_cleanly_and_leaves_no_file(tmp_path):
    out = tmp_path / "big.h5"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    process = subprocess.Popen(
        [sys.executable, "-m", "data_tools", "render", "--charset", "gb2312", "--font", NOTO_SANS_SC,
         "--size", "64", "--augment", "2", "--workers", "2", "--out", out],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True,
        # As a command typed in a terminal: Ctrl-C at its default. A test runner started in the
        # background by a non-interactive shell ignores SIGINT, and children inherit that.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 60
        while not any(tmp_path.iterdir()) and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert process.poll() is None, process.communicate()
        time.sleep(0.5)  # let the workers get going
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, stderr
    assert stderr == "data-tools: interrupted\n" and stdout == ""
    assert list(tmp_path.iterdir()) == []
