"""Web fonts: .woff/.woff2 files, and a family split into unicode-range subset files read as one face.

The family is cut in the test from an installed font with fontTools' subsetter, split
over several files as Google Fonts and @fontsource ship CJK faces (each subset also as a
.woff copy), so the rendered pixels can be compared with the source font's.
"""

from __future__ import annotations

import numpy as np
import pytest

import helpers
from data_tools.errors import InputError
from data_tools.fonts import discover_fonts, open_font_spec, read_faces
from data_tools.render import render_glyphs, resolve_faces
from data_tools.store import read_store
from fontdata import NOTO_SANS_SC, NOTO_SERIF_SC, subset_font
from helpers import run_data_tools

SLICES = ["永和九", "年岁在癸", "丑暮春"]  # the characters of each subset file
CHARACTERS = "".join(SLICES)


def make_family(folder, source=NOTO_SANS_SC, name="Web Sans", slices=SLICES, stem="web-sans"):
    """A subset family in `folder`: one .woff2 and one .woff per slice, all with full name `name`."""
    folder.mkdir(parents=True, exist_ok=True)
    for number, text in enumerate(slices):
        for flavor in ("woff2", "woff"):
            subset_font(source, text, folder / f"{stem}-{number}-400-normal.{flavor}", name, flavor=flavor)
    return folder


def test_a_subset_family_is_one_face_covering_the_union(tmp_path):
    family = make_family(tmp_path / "node_modules" / "@fontsource" / "web-sans" / "files")
    (face,) = discover_fonts([tmp_path / "node_modules"], installed=False)
    assert face.name == "Web Sans"
    assert face.path == family and face.spec == str(family)
    assert [part.name for part in face.parts] == [f"web-sans-{n}-400-normal.woff2" for n in range(3)]  # .woff copies left out
    assert face.covers(CHARACTERS + "啊A") == [True] * len(CHARACTERS) + [False, False]
    assert face.part_of("永年丑啊") == [0, 1, 2, -1]
    # the package folder, the files folder and FOLDER#0 name the same face
    assert open_font_spec(tmp_path / "node_modules" / "@fontsource" / "web-sans") == face
    assert open_font_spec(family) == face
    # a single subset file is a face of its own, with only its slice
    (part,) = read_faces(family / "web-sans-1-400-normal.woff")
    assert part.name == "Web Sans" and part.covers("年丑") == [True, False]


def test_rendering_a_family_gives_the_source_fonts_pixels(tmp_path):
    family = make_family(tmp_path / "family")
    from_family = tmp_path / "family.h5"
    from_source = tmp_path / "source.h5"
    characters = list(CHARACTERS) + ["啊"]  # 啊 is in no subset: missing from the family
    render_glyphs(from_family, characters, [open_font_spec(family)], size=32, workers=2)
    render_glyphs(from_source, characters, [open_font_spec(NOTO_SANS_SC)], size=32, workers=1)
    family_glyphs, source_glyphs = read_store(from_family), read_store(from_source)
    assert family_glyphs.sources == ["Web Sans"]
    assert len(family_glyphs) == len(CHARACTERS)  # every subset character once, 啊 missing
    source_rows = source_glyphs.labels < len(CHARACTERS)
    np.testing.assert_array_equal(family_glyphs.labels, source_glyphs.labels[source_rows])
    np.testing.assert_array_equal(family_glyphs.images, source_glyphs.images[source_rows])
    (recorded,) = family_glyphs.provenance["fonts"]
    assert recorded["parts"] == 3 and recorded["missing"] == 1


def test_several_families_in_one_folder_are_named_folder_hash_n(tmp_path):
    folder = tmp_path / "files"
    make_family(folder, NOTO_SANS_SC, "Web Sans", stem="web-sans")
    make_family(folder, NOTO_SERIF_SC, "Web Serif", slices=["永和", "九年"], stem="web-serif")
    faces = discover_fonts([folder], installed=False)
    assert [(face.name, face.spec, len(face.parts)) for face in faces] == [
        ("Web Sans", f"{folder}#0", 3), ("Web Serif", f"{folder}#1", 2)]
    assert open_font_spec(f"{folder}#1") == faces[1]
    with pytest.raises(InputError, match="holds 2 faces, name one"):
        open_font_spec(folder)
    with pytest.raises(InputError, match="no font face #2"):
        open_font_spec(f"{folder}#2")


def test_fonts_in_chooses_by_coverage(tmp_path):
    make_family(tmp_path / "kit" / "web-sans")
    make_family(tmp_path / "kit" / "partial", NOTO_SERIF_SC, "Partial Serif", slices=["永和", "九"], stem="partial")
    faces, left_out = resolve_faces([], False, list(CHARACTERS), 0.9, [tmp_path / "kit"])
    assert [face.name for face in faces] == ["Web Sans"]
    assert [(item.face.name, item.kind, item.reason) for item in left_out] == [
        ("Partial Serif", "coverage", "covers 3 of 10 characters (30%)")]
    with pytest.raises(InputError, match="no such folder"):
        resolve_faces([], False, list(CHARACTERS), None, [tmp_path / "absent"])


@pytest.mark.slow
def test_fonts_and_render_commands_take_web_fonts(tmp_path):
    family = make_family(tmp_path / "kit" / "web-sans")
    charset = tmp_path / "chars.txt"
    charset.write_text("\n".join(CHARACTERS) + "\n", encoding="utf-8")
    listing = run_data_tools("fonts", tmp_path / "kit", "--charset", charset)
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.strip() == f"{family}  Web Sans  (3 subset files)  10/10"
    out = tmp_path / "kit.h5"
    result = run_data_tools("render", "--charset", charset, "--fonts-in", tmp_path / "kit", "--out", out, "--workers", "1")
    assert result.returncode == 0, result.stderr
    assert read_store(out).sources == ["Web Sans"] and len(read_store(out)) == 10
    both = run_data_tools("render", "--charset", charset, "--font", family, "--fonts-in", tmp_path / "kit", "--out", out)
    helpers.assert_one_line_error(both, "data-tools", "does not go with --all-fonts or --fonts-in")
