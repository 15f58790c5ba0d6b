"""Traditional forms: the OpenCC mapping, `render --with-traditional` and its map through info, split and merge,
a judge that keeps the map, and `cond-lsgan audit` naming glyphs labelled s that are drawn as their traditional
form t "traditional" (precision and recall on planted ones); an older judge file audits as before; one-line errors."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from cond_lsgan.checkpoint import content_digest
from cond_lsgan.evaluation.audit import (MISREAD, TRADITIONAL, audit_glyphs, audit_report, likeliest_form, summary_text,
                                         traditional_readings)
from cond_lsgan.judge import load_judge, save_judge, train_judge
from data_tools.cli import main as data_tools_main
from data_tools.fonts import open_font_spec
from data_tools.info import store_report
from data_tools.merge import merge_stores
from data_tools.render import render_glyphs
from data_tools.split import split_store
from data_tools.store import ClassTable, GlyphSet, read_store, write_store
from data_tools.traditional import INSTALL_HINT, traditional_classes, traditional_forms
from fontdata import NOTO_SANS_SC, NOTO_SERIF_SC, WQY_MICROHEI, subset_font
from helpers import assert_one_line_error, run_cond_lsgan, run_data_tools, run_module

# Simplified characters whose traditional forms look clearly different, and characters without one.
WITH_FORMS = "会于阴发东车马鸟门见贝长书龙风电时问点难"
WITHOUT_FORMS = "啊一口人大山水火木日月田中上下手心石目耳"
FACES = [str(NOTO_SANS_SC), str(NOTO_SERIF_SC), f"{WQY_MICROHEI}#0"]
SIZE = 24
PLANTED = 30  # glyphs of the audited set replaced by their label's traditional form


def test_traditional_forms_from_opencc():
    assert traditional_forms("会") == ["會"]
    assert traditional_forms("于") == ["於"]
    assert traditional_forms("阴") == ["陰"]
    assert traditional_forms("发")[0] == "發" and "髮" in traditional_forms("发")  # s2t's form first, then t2s's others
    assert traditional_forms("啊") == [] and traditional_forms("一") == []  # no traditional form
    assert traditional_forms("會") == []  # already traditional
    # classes to add: distinct forms not in the set, each with every character it is a form of
    assert traditional_classes(list("会會啊")) == {}
    assert traditional_classes(list("余馀会")) == {"餘": ["余", "馀"], "會": ["会"]}


def test_the_traditional_rule_on_hand_made_judge_outputs():
    # label 0, whose forms are classes 5 and 6 (-1 pads); glyph by glyph what the judge gave:
    forms = np.array([[5, 6]] * 6 + [[-1, -1]])
    top = np.array([5, 9, 9, 9, 6, 0, 9])  # its best class
    top_probability = np.array([0.95, 0.30, 0.30, 0.95, 0.40, 0.60, 0.95])
    form_probability = np.array([[0.95, 0.01], [0.05, 0.01], [0.05, 0.01], [0.03, 0.0], [0.0, 0.40], [0.30, 0.0], [0, 0]])
    label_probability = np.array([0.01, 0.002, 0.01, 0.001, 0.30, 0.60, 0.001])
    form, probability, odds = likeliest_form(forms, form_probability, label_probability)
    assert form.tolist() == [5, 5, 5, 5, 6, 5, -1]
    np.testing.assert_allclose(odds[:6], [95, 25, 5, 30, 4 / 3, 0.5])
    assert np.isnan(odds[6])
    named = traditional_readings(np.zeros(7, np.int64), top, top_probability, forms, form, odds, 0.9, 10.0)
    # read confidently as its form; 25 to 1 though the judge reads another class best, unsure;
    # not: 5 to 1; 30 to 1 but confidently another class; a form read best but unsure and 4:3; the label read best; no form
    assert named.tolist() == [True, True, False, False, False, False, False]


def render_cli(tmp_path, name: str, charset: str, *options: str) -> int:
    (tmp_path / f"{name}.txt").write_text(charset, encoding="utf-8")
    return data_tools_main(["render", "--charset", str(tmp_path / f"{name}.txt"), "--size", str(SIZE), "--workers", "1",
                            "--out", str(tmp_path / f"{name}.h5"), *map(str, options)])


def test_render_with_traditional_adds_the_forms_and_records_them(tmp_path, capsys):
    fonts = [item for face in FACES[:2] for item in ("--font", face)]
    assert render_cli(tmp_path, "trad", "会于啊发", *fonts, "--with-traditional") == 0
    assert "4 of the classes are traditional forms" in capsys.readouterr().out
    glyphs = read_store(tmp_path / "trad.h5")
    assert glyphs.classes.text == list("会于啊发") + ["會", "於", "發", "髮"]  # the charset keeps its indices
    assert glyphs.traditional_of == {"會": ["会"], "於": ["于"], "發": ["发"], "髮": ["发"]}
    assert glyphs.provenance["traditional_classes"] == 4
    assert np.bincount(glyphs.labels).tolist() == [2] * 8  # every class from both faces
    plain = render_glyphs(tmp_path / "plain.h5", ["會", "髮"], [open_font_spec(FACES[1])], size=SIZE)
    assert plain.samples == 2
    drawn = read_store(tmp_path / "plain.h5")
    for character, image in zip(["會", "髮"], drawn.images):
        mine = (glyphs.labels == glyphs.classes.text.index(character)) & (glyphs.source_ids == 1)
        np.testing.assert_array_equal(glyphs.images[mine][0], image)
    assert "traditional:  4 classes are traditional forms of others: 會 of 会, 於 of 于" in store_report(tmp_path / "trad.h5")

    # split keeps the map; merge unites the maps of its inputs (a store without one loses nothing)
    split_store(tmp_path / "trad.h5", tmp_path / "train.h5", tmp_path / "test.h5", test_fraction=0.5)
    assert read_store(tmp_path / "train.h5").traditional_of == read_store(tmp_path / "test.h5").traditional_of == glyphs.traditional_of
    assert render_cli(tmp_path, "other", "余马", *fonts, "--with-traditional") == 0
    assert render_cli(tmp_path, "none", "会啊", *fonts) == 0
    assert read_store(tmp_path / "none.h5").traditional_of == {}
    merged = merge_stores([tmp_path / "none.h5", tmp_path / "trad.h5", tmp_path / "other.h5"], tmp_path / "merged.h5")
    assert merged.traditional == 6
    assert read_store(tmp_path / "merged.h5").traditional_of == {**glyphs.traditional_of, "餘": ["余"], "馬": ["马"]}


def test_a_traditional_form_drawn_with_the_simplified_glyph_or_by_no_face_is_left_out(tmp_path, capsys):
    aliased = subset_font(NOTO_SANS_SC, "会于會於阴", tmp_path / "alias.otf", "Alias Font", remap={"會": "会"})
    assert render_cli(tmp_path, "alias", "会于阴", "--font", str(aliased), "--with-traditional") == 0
    out = capsys.readouterr().out
    assert "aliased 1 (會)" in out and "left out 1 traditional forms no face has: 陰" in out
    glyphs = read_store(tmp_path / "alias.h5")
    assert glyphs.classes.text == ["会", "于", "阴", "會", "於"] and glyphs.traditional_of == {"會": ["会"], "於": ["于"]}
    assert [glyphs.classes.text[label] for label in glyphs.labels] == ["会", "于", "阴", "於"]


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    """(folder, the audited set, the indices of its planted glyphs); folder/train.h5 is the judge's training store.

    Training: the charset and its traditional forms from 3 faces, 7 jittered variants each.
    Audited: 3 other jittered variants of the same faces, with the charset's classes only
    (as a gb2312-1 store has), in which PLANTED glyphs labelled s are the same face and
    variant drawing the traditional form of s.
    """
    folder = tmp_path_factory.mktemp("trad")
    charset = list(WITH_FORMS + WITHOUT_FORMS)
    added = traditional_classes(charset)
    classes = charset + list(added)
    faces = [open_font_spec(face) for face in FACES]
    render_glyphs(folder / "train.h5", classes, faces, size=SIZE, augment=7, seed=0, traditional_of=added)
    render_glyphs(folder / "other.h5", classes, faces, size=SIZE, augment=3, seed=1)
    other = read_store(folder / "other.h5")

    def variants(label: int, source: int) -> np.ndarray:  # sample order: face, character, variant
        return np.flatnonzero((other.labels == label) & (other.source_ids == source))

    base = np.flatnonzero(other.labels < len(charset))
    planted = np.sort(np.random.default_rng(0).choice(base[other.labels[base] < len(WITH_FORMS)], PLANTED, replace=False))
    images = other.images.copy()
    for index in planted.tolist():
        label, source = int(other.labels[index]), int(other.source_ids[index])
        form = classes.index(traditional_forms(charset[label])[0])
        images[index] = other.images[variants(form, source)[variants(label, source).tolist().index(index)]]
    audited = GlyphSet(images[base], other.labels[base], ClassTable(charset), other.sources, other.source_ids[base], {})
    return folder, audited, np.searchsorted(base, planted)


@pytest.fixture(scope="module")
def judge_files(kit):
    """The judge trained on folder/train.h5 (it knows the traditional forms), and the same judge written as a judge
    file from before the traditional_of map (the key absent, the digest of the rest)."""
    folder, _, _ = kit
    judge, info = train_judge(read_store(folder / "train.h5"), steps=500, seed=0, device="cpu", channels=16, feature_dim=64)
    assert judge.traditional_of and info["held_out_accuracy"] > 0.9, info
    save_judge(judge, folder / "judge.pt", info)
    state = torch.load(folder / "judge.pt", weights_only=True)
    assert state["traditional_of"] == judge.traditional_of
    del state["traditional_of"], state["digest"]
    state["digest"] = content_digest(state)
    torch.save(state, folder / "old_judge.pt")
    return folder / "judge.pt", folder / "old_judge.pt"


@pytest.mark.slow  # trains a judge: about a minute
def test_glyphs_drawn_as_their_traditional_form_are_named_traditional(kit, judge_files):
    _, audited, planted = kit
    judge = load_judge(judge_files[0], "cpu")
    assert judge.traditional_of["會"] == ["会"] and len(judge.classes) > len(audited.classes)  # extra classes: no error
    result = audit_glyphs(audited, judge)
    named = set(np.flatnonzero(result.kinds == TRADITIONAL).tolist())
    caught = named & set(planted.tolist())
    recall, precision = len(caught) / PLANTED, len(caught) / max(len(named), 1)
    print(f"{PLANTED} planted traditional forms among {len(audited)} glyphs: recall {recall:.2f}, precision {precision:.2f}")
    assert recall >= 0.9 and precision >= 0.9, (recall, precision)
    for i in caught:  # named by the form they show
        assert result.read_as[i] == traditional_forms(audited.classes.text[audited.labels[i]])[0]
    report = audit_report(audited, result, "audited", "judge.pt", 0.9, 4.0, None, len(judge.traditional_of))
    assert report["traditional"] == len(named) and report["traditional_odds"] == 10
    assert sum(row["traditional"] for row in report["sources"]) == len(named)
    text = summary_text(report)
    assert f"({len(named)} traditional, " in text.splitlines()[0]
    first = next(row for row in report["flagged_glyphs"] if row["kind"] == "traditional")
    assert f"traditional, {first['class']} drawn as {first['read_as']}" in text

    # an older judge file: same flags but none "traditional", and nothing said about them
    old = load_judge(judge_files[1], "cpu")
    assert old.traditional_of == {}
    before = audit_glyphs(audited, old)
    assert not (before.kinds == TRADITIONAL).any()
    unchanged = result.kinds != TRADITIONAL
    np.testing.assert_array_equal(before.kinds[unchanged], result.kinds[unchanged])
    high = (result.kinds == TRADITIONAL) & (result.confidence >= 0.9)
    assert (before.kinds[high] == MISREAD).all() and (before.kinds[~high & ~unchanged] != MISREAD).all()
    old_report = audit_report(audited, before, "audited", "old.pt", 0.9, 4.0)
    assert old_report["judge_traditional_classes"] == 0 and old_report["traditional_odds"] is None
    assert "traditional" not in summary_text(old_report)
    assert (audit_glyphs(audited, judge, traditional_odds=1e6).kinds == TRADITIONAL).sum() <= len(named)


@pytest.mark.slow
def test_audit_command_names_traditional_forms_in_report_sheet_and_clean_store(kit, judge_files, tmp_path):
    _, audited, planted = kit
    store = tmp_path / "audited.h5"
    write_store(store, audited)
    report, clean, sheet = tmp_path / "audit.json", tmp_path / "clean.h5", tmp_path / "flagged.png"
    result = run_cond_lsgan("audit", store, "--judge", judge_files[0], "--report", report, "--out", clean,
                            "--sheet", sheet, "--device", "cpu")
    assert result.returncode == 0, result.stderr
    saved = json.loads(report.read_text(encoding="utf-8"))
    named = [row for row in saved["flagged_glyphs"] if row["kind"] == "traditional"]
    assert len(named) == saved["traditional"] >= 0.9 * PLANTED
    assert saved["flagged"] == saved["traditional"] + saved["misread"] + saved["outliers"]
    assert result.stdout.splitlines()[0].startswith(f"audited {len(audited)} glyphs: {saved['flagged']} flagged "
                                                    f"({saved['traditional']} traditional, ")
    assert f"#{named[0]['index']} {named[0]['class']} from {named[0]['source']}: traditional, " \
           f"{named[0]['class']} drawn as {named[0]['read_as']}" in result.stdout
    kept = read_store(clean)
    assert len(kept) == len(audited) - saved["flagged"]
    assert len({row["index"] for row in named} & set(planted.tolist())) >= 0.9 * len(named)
    assert kept.provenance["audit"]["traditional"] == saved["traditional"]
    assert Image.open(sheet).width > 20 * 3 * SIZE  # cells wide enough for "会 drawn as 會"


@pytest.mark.slow  # processes
def test_traditional_bad_input_is_one_line(kit, judge_files, tmp_path):
    folder, audited, _ = kit
    store = tmp_path / "audited.h5"
    write_store(store, audited)
    (tmp_path / "chars.txt").write_text("会啊", encoding="utf-8")
    render = ("render", "--charset", tmp_path / "chars.txt", "--font", NOTO_SANS_SC, "--workers", "1", "--out", tmp_path / "r.h5")
    cases = [
        (run_data_tools("render", "--charset", "digits", "--font", NOTO_SANS_SC, "--with-traditional", "--out",
                        tmp_path / "d.h5"), "data-tools", ("--with-traditional", "none of the 10 characters")),
        (run_cond_lsgan("audit", store, "--judge", judge_files[1], "--traditional-odds", "5"), "cond-lsgan",
         ("--traditional-odds", "--with-traditional")),
        (run_cond_lsgan("audit", store, "--judge", judge_files[0], "--traditional-odds", "0.5"), "cond-lsgan",
         ("--traditional-odds", "at least 1")),
    ]
    # without the opencc package (a module of that name that fails to import stands in for its absence)
    (tmp_path / "no_opencc").mkdir()
    (tmp_path / "no_opencc" / "opencc.py").write_text("raise ImportError(\"No module named 'opencc'\")\n")
    cases.append((run_module("data_tools", *render, "--with-traditional", extra_path=tmp_path / "no_opencc"), "data-tools",
                  ("--with-traditional", INSTALL_HINT)))
    # a store whose traditional_of attribute names a class it does not have
    damaged = tmp_path / "damaged.h5"
    write_store(damaged, audited)
    with h5py.File(damaged, "r+") as file:
        file.attrs["traditional_of"] = json.dumps({"會": ["无"]}, ensure_ascii=False)
    cases.append((run_data_tools("info", damaged), "data-tools", ("traditional_of", "'會'", "not a class")))
    for result, prog, fragments in cases:
        assert_one_line_error(result, prog, *fragments)
    assert not (tmp_path / "r.h5").exists() and not (tmp_path / "d.h5").exists()
