"""Glyph rendering from real fonts: skips, drops, centring, augmentation, determinism, workers."""

from __future__ import annotations

import multiprocessing
import shutil

import numpy as np
import pytest

from data_tools.charsets import gb2312_level1
from data_tools.errors import InputError
from data_tools.fonts import FontFace, open_font_spec
from data_tools.render import REPEAT_LIMIT, format_report, render_glyphs, select_faces
from data_tools.store import read_store
from fontdata import NOTO_SANS_SC, NOTO_SERIF_SC, WQY_MICROHEI, subset_font

CHARACTERS = gb2312_level1()[:10] + ["一", "口", "1", "g"]  # a flat, a square, a tall and a descender glyph


@pytest.fixture(scope="module")
def noto():
    return open_font_spec(NOTO_SANS_SC)


def ink_box(image: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(image.any(axis=1))[0], np.nonzero(image.any(axis=0))[0]
    return cols[0], rows[0], cols[-1] + 1, rows[-1] + 1  # left, top, right, bottom


def test_glyphs_are_centred_scaled_to_fit_and_light_on_dark(tmp_path, noto):
    out = tmp_path / "g.h5"
    report = render_glyphs(out, CHARACTERS, [noto], size=28, margin=2, charset_name="test")
    glyphs = read_store(out)
    assert glyphs.images.shape == (14, 28, 28)
    np.testing.assert_array_equal(glyphs.labels, np.arange(14))
    assert glyphs.classes.text == CHARACTERS and glyphs.sources == ["Noto Sans SC"]
    assert report.samples == 14 and report.faces[0].rendered == 14 and not report.empty_classes
    for character, image in zip(CHARACTERS, glyphs.images):
        left, top, right, bottom = ink_box(image)
        assert abs(left - (28 - right)) <= 1 and abs(top - (28 - bottom)) <= 1, character
        assert 22 <= max(right - left, bottom - top) <= 24, character  # fills 28 - 2*2, aspect kept
        assert image.max() >= 250 and image[0].max() == image[:, 0].max() == 0
    flat = ink_box(glyphs.images[CHARACTERS.index("一")])
    assert flat[2] - flat[0] >= 22 and flat[3] - flat[1] <= 5  # 一 stays a thin horizontal stroke
    tall = ink_box(glyphs.images[CHARACTERS.index("1")])
    assert tall[3] - tall[1] >= 22 and tall[2] - tall[0] <= 16
    assert len({image.tobytes() for image in glyphs.images}) == 14


def test_missing_characters_are_skipped_not_drawn(tmp_path, noto):
    partial = open_font_spec(subset_font(NOTO_SANS_SC, "啊埃一", tmp_path / "three.otf", "Three Glyphs"))
    out = tmp_path / "g.h5"
    report = render_glyphs(out, CHARACTERS, [noto, partial], charset_name="test")
    glyphs = read_store(out)
    assert glyphs.sources == ["Noto Sans SC", "Three Glyphs"]
    from_partial = glyphs.source_ids == 1
    assert [glyphs.classes.text[label] for label in glyphs.labels[from_partial]] == ["啊", "埃", "一"]
    assert report.faces[1].rendered == 3
    assert report.faces[1].missing == [c for c in CHARACTERS if c not in "啊埃一"]
    # the subset draws its glyphs exactly as the full font does
    np.testing.assert_array_equal(glyphs.images[from_partial], glyphs.images[[0, 2, 10]])
    assert "missing 11" in format_report(report)


def test_fallback_and_empty_glyphs_are_dropped(tmp_path, noto):
    # five characters drawn with 口's glyph (more than REPEAT_LIMIT), one with the empty space glyph
    copies = {c: "口" for c in "阿埃挨哎唉"}
    odd = subset_font(NOTO_SANS_SC, "啊口一 ", tmp_path / "odd.otf", "Odd", remap={**copies, "癌": " "})
    assert len(copies) > REPEAT_LIMIT
    face = open_font_spec(odd)
    characters = ["啊", "一", "癌", *copies]
    assert all(face.covers(characters))  # the cmap claims all of them
    report = render_glyphs(tmp_path / "g.h5", characters, [face])
    result = report.faces[0]
    assert result.blank == ["癌"] and result.repeated == list(copies) and result.rendered == 2
    assert read_store(tmp_path / "g.h5").labels.tolist() == [0, 1]
    summary = format_report(report)
    assert "blank 1 (癌)" in summary and "repeated 5 (阿埃挨哎唉)" in summary


def test_augmented_variants_follow_the_seed(tmp_path, noto):
    serif = open_font_spec(NOTO_SERIF_SC)
    characters = CHARACTERS[:6]
    paths = [tmp_path / f"{name}.h5" for name in ("a", "b", "c")]
    render_glyphs(paths[0], characters, [noto, serif], augment=3, seed=5)
    render_glyphs(paths[1], characters, [noto, serif], augment=3, seed=5)
    render_glyphs(paths[2], characters, [noto, serif], augment=3, seed=6)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    first, other = read_store(paths[0]), read_store(paths[2])
    assert first.images.shape == (2 * 6 * 4, 28, 28)
    # order: face, then character, then variant (0 = plain)
    np.testing.assert_array_equal(first.labels, np.tile(np.repeat(np.arange(6), 4), 2))
    np.testing.assert_array_equal(first.source_ids, np.repeat([0, 1], 24))
    plain = first.images[::4]
    np.testing.assert_array_equal(plain, other.images[::4])  # the seed moves only the variants
    assert not np.array_equal(first.images, other.images)
    assert len({image.tobytes() for image in first.images}) == 48  # every variant differs
    for image in first.images:
        left, top, right, bottom = ink_box(image)
        assert right - left >= 10 and bottom - top >= 10 and image.max() >= 200
    assert first.provenance["augment"] == 3 and first.provenance["seed"] == 5


def test_worker_count_does_not_change_the_file(tmp_path, noto):
    faces = [noto, open_font_spec(f"{WQY_MICROHEI}#0")]
    characters = gb2312_level1()[:150]  # more than one chunk per face
    one, two = tmp_path / "one.h5", tmp_path / "two.h5"
    render_glyphs(one, characters, faces, augment=1, seed=3, workers=1)
    render_glyphs(two, characters, faces, augment=1, seed=3, workers=2)
    a, b = read_store(one), read_store(two)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert one.read_bytes() == two.read_bytes()


def test_identical_faces_are_left_out_as_duplicates(tmp_path, noto):
    copy = tmp_path / "copy.otf"
    shutil.copy(NOTO_SANS_SC, copy)
    report = render_glyphs(tmp_path / "g.h5", CHARACTERS[:4], [noto, open_font_spec(copy)])
    assert report.faces[1].duplicate_of == "Noto Sans SC" and report.faces[1].source is None
    assert f"left out, same glyphs as Noto Sans SC: Noto Sans SC ({copy})" in format_report(report)
    glyphs = read_store(tmp_path / "g.h5")
    assert glyphs.sources == ["Noto Sans SC"] and len(glyphs) == 4
    assert glyphs.provenance["fonts"][1]["duplicate_of"] == "Noto Sans SC"


def test_interrupted_render_leaves_no_file_and_no_workers(tmp_path, noto):
    out = tmp_path / "g.h5"

    def interrupt(count: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render_glyphs(out, gb2312_level1()[:300], [noto], workers=2, on_chunk=interrupt)
    assert list(tmp_path.iterdir()) == []
    assert multiprocessing.active_children() == []


def test_a_face_without_any_of_the_characters_is_an_error(tmp_path, noto):
    latin = open_font_spec(subset_font(NOTO_SANS_SC, "AB", tmp_path / "ab.otf", "Only AB"))
    with pytest.raises(InputError, match="Only AB.* has none of the 4 characters of gb2312-1"):
        render_glyphs(tmp_path / "g.h5", CHARACTERS[:4], [noto, latin], charset_name="gb2312-1")
    assert not (tmp_path / "g.h5").exists()


def test_select_faces_leaves_out_other_regions_and_poor_coverage(tmp_path, noto):
    partial = open_font_spec(subset_font(NOTO_SANS_SC, "啊阿", tmp_path / "two.otf", "Two"))
    japanese = FontFace(NOTO_SANS_SC, 0, "Noto Sans CJK JP")  # a regional face of a pan-CJK collection
    chosen, left_out = select_faces([noto, partial, japanese], CHARACTERS[:4], min_coverage=0.9)
    assert chosen == [noto]
    assert [tuple(item) for item in left_out] == [
        (partial, "coverage", "covers 2 of 4 characters (50%)"),
        (japanese, "region", "made for another region (JP)"),
    ]
    assert select_faces([partial], CHARACTERS[:4], min_coverage=0.5)[0] == [partial]
