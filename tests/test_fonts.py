"""Font faces: reading files and collections, cmap coverage, discovery, CJK captions in grids."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from data_tools.charsets import gb2312_level1
from data_tools.errors import InputError
from data_tools.fonts import (
    FontFace,
    discover_fonts,
    find_cjk_caption_font,
    font_package_dirs,
    format_font_listing,
    open_font_spec,
    parse_font_spec,
    read_faces,
)
from data_tools.grid import GAP, image_grid
from fontdata import NOTO_SANS_SC, NOTO_SERIF_SC, WQY_MICROHEI, subset_font


def test_noto_sans_sc_covers_gb2312_level1():
    (face,) = read_faces(NOTO_SANS_SC)
    assert face == FontFace(NOTO_SANS_SC, 0, "Noto Sans SC", collection=False)
    assert face.spec == str(NOTO_SANS_SC)
    assert sum(face.covers(gb2312_level1())) == 3755
    assert face.missing(["啊", "\U0001F600", "A"]) == ["\U0001F600"]


def test_collection_faces_are_named_path_hash_index():
    faces = read_faces(WQY_MICROHEI)
    assert [(f.index, f.name) for f in faces] == [(0, "WenQuanYi Micro Hei"), (1, "WenQuanYi Micro Hei Mono")]
    assert faces[1].spec == f"{WQY_MICROHEI}#1"
    assert open_font_spec(f"{WQY_MICROHEI}#1") == faces[1]
    with pytest.raises(InputError, match="holds 2 faces, name one as .*#N: #0 WenQuanYi Micro Hei; #1"):
        open_font_spec(WQY_MICROHEI)
    with pytest.raises(InputError, match=r"has 2 face\(s\) \(#0-#1\), no face #2"):
        open_font_spec(f"{WQY_MICROHEI}#2")


def test_parse_font_spec():
    assert parse_font_spec("a/b.ttc#3") == (parse_font_spec("a/b.ttc")[0], 3)
    assert parse_font_spec("a/b.ttc") == (parse_font_spec("a/b.ttc")[0], None)
    assert parse_font_spec("dir#x/b.ttf")[1] is None  # a '#' that is not a face index stays in the path


def test_subset_font_lacks_what_was_cut(tmp_path):
    path = subset_font(NOTO_SANS_SC, "啊阿", tmp_path / "two.otf", "Two Glyphs")
    face = open_font_spec(path)
    assert face.name == "Two Glyphs"
    assert face.covers(["啊", "埃", "阿"]) == [True, False, True]
    listing = format_font_listing([face], ["啊", "埃", "阿", "挨"], show_missing=True)
    assert listing == f"{path}  Two Glyphs  2/4\n    missing: 埃挨"


def test_not_a_font_and_missing_files(tmp_path):
    junk = tmp_path / "junk.ttf"
    junk.write_text("not a font\n")
    with pytest.raises(InputError, match="junk.ttf: not a font file"):
        read_faces(junk)
    truncated = tmp_path / "cut.otf"
    truncated.write_bytes(NOTO_SANS_SC.read_bytes()[:200])
    with pytest.raises(InputError, match="cut.otf: not a readable font"):
        read_faces(truncated)
    with pytest.raises(InputError, match="font file not found"):
        open_font_spec(tmp_path / "absent.ttf#1")


def test_discovery_in_folders_skips_junk_and_duplicates(tmp_path):
    folder = tmp_path / "fonts"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(WQY_MICROHEI, folder / "sub" / "wqy.ttc")
    subset_font(NOTO_SANS_SC, "啊", folder / "a.otf", "Just A")
    (folder / "broken.ttf").write_text("junk")  # found by scanning: skipped
    (folder / "notes.txt").write_text("hello")
    faces = discover_fonts([folder, folder / "a.otf"], installed=False)
    assert [(f.path.name, f.index, f.name) for f in faces] == [
        ("a.otf", 0, "Just A"), ("wqy.ttc", 0, "WenQuanYi Micro Hei"), ("wqy.ttc", 1, "WenQuanYi Micro Hei Mono"),
    ]
    assert discover_fonts([f"{folder / 'sub' / 'wqy.ttc'}#1"], installed=False) == [faces[2]]
    with pytest.raises(InputError, match="broken.ttf: not a font file"):
        discover_fonts([folder / "broken.ttf"], installed=False)  # named explicitly: an error


def test_installed_discovery_finds_the_pip_font_packages():
    folders = font_package_dirs()
    assert NOTO_SANS_SC.parent in folders and WQY_MICROHEI.parent.parent in folders
    specs = [face.spec for face in discover_fonts()]
    assert str(NOTO_SANS_SC) in specs and str(NOTO_SERIF_SC) in specs and f"{WQY_MICROHEI}#0" in specs


def test_grid_captions_in_chinese_use_a_cjk_face():
    face = find_cjk_caption_font()
    assert face is not None and all(face.covers(gb2312_level1()))
    images = np.zeros((2, 16, 16), np.uint8)
    automatic = np.asarray(image_grid(images, captions=["啊", "座"], scale=2))
    explicit = np.asarray(image_grid(images, captions=["啊", "座"], scale=2, font_path=face.path, font_index=face.index))
    np.testing.assert_array_equal(automatic, explicit)
    caption = automatic[GAP + 32 :, GAP : GAP + 32]
    assert caption.max() > 128  # the character is drawn
    # the two characters differ, so their captions do (a missing-glyph box would look alike)
    assert not np.array_equal(caption, automatic[GAP + 32 :, 2 * GAP + 32 : 2 * GAP + 64])
