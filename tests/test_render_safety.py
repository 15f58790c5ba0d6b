"""`data-tools render` keeps its inputs safe and survives damaged fonts.

- `--out` may not be any face file the command reads, however it was found (`--fonts-in
  DIR`, a folder given to `--font`) or spelled (a symlinked folder on the way): the font
  is left byte for byte as it was, and the error names the face.
- A face whose glyph outlines FreeType refuses to draw (the cmap is intact, so coverage
  looks fine), that FreeType cannot load, or whose glyphs claim a huge box (a canvas
  of gigabytes) is named and skipped when several faces are rendered, refused with
  `--strict`, and an error when it is the only face; nothing is left at `--out` then.

The damaged font is cut from a real TrueType face (WenQuanYi Micro Hei, glyf outlines)
with fontTools, its first contour end point set out of order, which FreeType reports
as "invalid outline".
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
from fontTools.ttLib import TTFont
from PIL import ImageFont

import helpers
from data_tools.store import read_store
from fontdata import NOTO_SANS_SC, WQY_MICROHEI, subset_font
from helpers import run_data_tools

pytestmark = pytest.mark.slow  # the tests start the CLI

TEXT = "永和九"


def assert_one_line_error(result, *fragments: str) -> None:
    helpers.assert_one_line_error(result, "data-tools", *fragments)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def damaged_font(base: Path, out: Path, name: str, damage: str = TEXT) -> Path:
    """`base` (a TrueType font of TEXT) named `name`, its glyphs for `damage` (and their components) undrawable."""
    font = TTFont(base)
    for name_id, text in ((1, name), (4, name), (6, name.replace(" ", ""))):
        font["name"].setName(text, name_id, 3, 1, 0x409)
    glyf, cmap = font["glyf"], font.getBestCmap()
    pending = [cmap[ord(character)] for character in damage]
    while pending:
        glyph = glyf[pending.pop()]
        if glyph.isComposite():
            pending += [component.glyphName for component in glyph.components]
        elif glyph.numberOfContours > 0:
            glyph.endPtsOfContours[0] = 0xFFF0  # contour end points out of order
    font.save(out)
    return out


def unloadable_font(base: Path, out: Path) -> Path:
    """`base` with its head table zeroed: fontTools still reads the cmap and name, FreeType loads nothing."""
    with TTFont(base) as font:
        entry = font.reader.tables["head"]
        offset, length = entry.offset, entry.length
    data = bytearray(base.read_bytes())
    data[offset : offset + length] = bytes(length)
    out.write_bytes(data)
    return out


def huge_font(base: Path, out: Path) -> Path:
    """`base` claiming 16 units per em: its 1,000-unit glyphs are over 60 em a side (gigabytes at 4,096 units)."""
    with TTFont(base) as font:
        font["head"].unitsPerEm = 16
        font.save(out)
    return out


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, Path]:
    """The fonts of these tests, cut once (a second each); tests copy them where they need them."""
    folder = tmp_path_factory.mktemp("fonts")
    hei = subset_font(WQY_MICROHEI, TEXT, folder / "hei.ttf", "Hei")
    return {
        "good.otf": subset_font(NOTO_SANS_SC, TEXT, folder / "good.otf", "Good Sans"),
        "wk.woff2": subset_font(NOTO_SANS_SC, TEXT, folder / "wk.woff2", "Web One", flavor="woff2"),
        "partial.otf": subset_font(NOTO_SANS_SC, "永", folder / "partial.otf", "Partial Sans"),
        **{f"web-sans-{n}.woff2": subset_font(NOTO_SANS_SC, text, folder / f"web-sans-{n}.woff2", "Web Sans", flavor="woff2")
           for n, text in enumerate(["永和", "九"])},
        "bad.ttf": damaged_font(hei, folder / "bad.ttf", "Broken Hei"),
        "bad-nine.ttf": damaged_font(hei, folder / "bad-nine.ttf", "Broken Hei", damage="九"),
        "other.ttf": damaged_font(hei, folder / "other.ttf", "Other Hei", damage="和"),
        "noload.ttf": unloadable_font(hei, folder / "noload.ttf"),
        "huge.ttf": huge_font(hei, folder / "huge.ttf"),
    }


@pytest.fixture
def fonts(made, tmp_path):
    """Copies of the fonts into `folder` (made if need be) under their names, or named `as_name`."""

    def copy(name: str, folder: Path = tmp_path, as_name: str | None = None) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copyfile(made[name], folder / (as_name or name)))

    return copy


@pytest.fixture
def charset(tmp_path) -> Path:
    path = tmp_path / "chars.txt"
    path.write_text("\n".join(TEXT) + "\n", encoding="utf-8")
    return path


def test_the_damaged_font_really_is_damaged(fonts):
    bad = fonts("bad-nine.ttf")
    assert set(TTFont(bad).getBestCmap()) == {ord(c) for c in TEXT}  # the cmap still has every character
    font = ImageFont.truetype(str(bad), 112)
    assert font.getbbox("永")[2] > 0
    with pytest.raises(OSError, match="invalid outline"):
        font.getbbox("九")


def test_fonts_in_never_writes_over_a_face_it_reads(tmp_path, fonts, charset):
    folder = tmp_path / "webone"
    font, partial = fonts("wk.woff2", folder), fonts("partial.otf", folder)  # partial: read, then left out by coverage
    before = {path: sha256(path) for path in (font, partial)}
    assert_one_line_error(run_data_tools("render", "--charset", charset, "--fonts-in", folder, "--out", font),
                          f"--out {font} is the input font (Web One) {font}", "choose another --out")
    assert_one_line_error(run_data_tools("render", "--charset", charset, "--fonts-in", folder, "--out", partial),
                          f"is the input font (Partial Sans) {partial}")
    link = tmp_path / "link"
    link.symlink_to(folder, target_is_directory=True)  # the same file through a symlinked folder
    assert_one_line_error(run_data_tools("render", "--charset", charset, "--fonts-in", folder, "--out", link / "wk.woff2"),
                          f"--out {link / 'wk.woff2'} is the input font (Web One) {font}")
    assert {path: sha256(path) for path in (font, partial)} == before
    assert sorted(folder.iterdir()) == sorted(before)  # no temporary file left either


def test_a_folder_given_to_font_has_each_of_its_files_checked(tmp_path, fonts, charset):
    family = tmp_path / "web-sans"
    parts = [fonts(f"web-sans-{n}.woff2", family) for n in range(2)]
    before = [sha256(part) for part in parts]
    assert_one_line_error(run_data_tools("render", "--charset", charset, "--font", family, "--out", parts[1]),
                          f"--out {parts[1]} is the input font (Web Sans) {parts[1]}")
    hard = tmp_path / "hard.woff2"
    os.link(parts[0], hard)
    assert_one_line_error(run_data_tools("render", "--charset", charset, "--font", family, "--out", hard),
                          f"--out {hard} is the input font (Web Sans) {parts[0]}")
    assert [sha256(part) for part in parts] == before and sorted(family.iterdir()) == parts
    out = tmp_path / "ok.h5"
    result = run_data_tools("render", "--charset", charset, "--font", family, "--out", out)
    assert result.returncode == 0, result.stderr
    assert read_store(out).sources == ["Web Sans"] and len(read_store(out)) == 3


@pytest.mark.parametrize("how", ["--fonts-in", "--font"])
def test_a_damaged_face_among_several_is_named_and_skipped(tmp_path, fonts, charset, how):
    folder = tmp_path / "mix"
    good = fonts("good.otf", folder)
    bad = fonts("bad-nine.ttf", folder, "bad.ttf")  # its 永 and 和 draw; the face is left out all the same
    unloadable = fonts("noload.ttf", folder)
    chosen = ["--fonts-in", folder] if how == "--fonts-in" else ["--font", bad, "--font", good, "--font", unloadable]
    out = tmp_path / "out.h5"
    result = run_data_tools("render", "--charset", charset, *chosen, "--workers", "2", "--out", out)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines() == [
        f"wrote 3 glyphs (28x28) of 3 classes from 1 face(s) to {out}",
        f"        3  Good Sans ({good})",
        f"left out, damaged: Broken Hei ({bad}): FreeType cannot draw 九 (invalid outline)",
        f"left out, damaged: Hei ({unloadable}): FreeType cannot load it (broken table)",
    ]
    glyphs = read_store(out)
    assert glyphs.sources == ["Good Sans"] and len(glyphs) == 3
    (entry,) = [face for face in glyphs.provenance["fonts"] if face["name"] == "Broken Hei"]
    assert entry["damaged"] == "FreeType cannot draw 九 (invalid outline)"
    assert entry["source"] is None and entry["rendered"] == 0 and entry["path"] == str(bad)


def test_strict_refuses_a_damaged_face(tmp_path, fonts, charset):
    good, bad = fonts("good.otf"), fonts("bad.ttf")
    out = tmp_path / "out.h5"
    for workers in ("1", "2"):
        result = run_data_tools("render", "--charset", charset, "--font", good, "--font", bad, "--strict",
                                "--workers", workers, "--out", out)
        assert_one_line_error(result, f"font {bad} (Broken Hei) is damaged: FreeType cannot draw 永 (invalid outline)",
                              "without --strict it would be left out")
    assert sorted(tmp_path.iterdir()) == sorted([charset, good, bad])  # nothing at --out, no temporary file


def test_a_damaged_only_face_is_an_error_and_leaves_out_alone(tmp_path, fonts, charset):
    bad, other = fonts("bad.ttf"), fonts("other.ttf")
    out = tmp_path / "out.h5"
    out.write_bytes(b"an earlier store")
    result = run_data_tools("render", "--charset", charset, "--font", bad, "--out", out)
    assert_one_line_error(result, f"font {bad} (Broken Hei) is damaged: FreeType cannot draw 永 (invalid outline)")
    assert "--strict" not in result.stderr
    result = run_data_tools("render", "--charset", charset, "--font", fonts("huge.ttf"), "--out", out)
    assert_one_line_error(result, "(Hei) is damaged: the glyph of 永 is ", "px at 112 px per em (more than 8 em a side)")
    result = run_data_tools("render", "--charset", charset, "--font", bad, "--font", other, "--out", out)
    assert_one_line_error(result, "no face could be drawn; damaged: ",
                          f"Broken Hei ({bad}): FreeType cannot draw 永 (invalid outline); "
                          f"Other Hei ({other}): FreeType cannot draw 和 (invalid outline)")
    assert out.read_bytes() == b"an earlier store"
    assert sorted(tmp_path.iterdir()) == sorted([charset, bad, other, out, tmp_path / "huge.ttf"])
