"""`cond-lsgan audit`: deliberately wrong labels are flagged and clean glyphs are not; the outlier
distance against a hand-computed robust z; the cleaned store, the sheet and one-line errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from cond_lsgan.evaluation.audit import audit_glyphs, class_distance_z
from cond_lsgan.judge import judge_outputs, load_judge, save_judge, train_judge
from data_tools.errors import InputError
from data_tools.store import GlyphSet, read_store, write_store
from data_tools.synthetic import synthetic_digits
from helpers import TINY_JUDGE, assert_one_line_error, run_cond_lsgan

SIZE = 16
WRONG = 25  # glyphs given a wrong label, of 600


@pytest.fixture(scope="module")
def judge_file(tmp_path_factory):
    """A judge trained on clean digits (other glyphs than the audited ones: another seed of the set)."""
    judge, info = train_judge(synthetic_digits(500, size=SIZE, seed=3), steps=300, seed=0, device="cpu", **TINY_JUDGE)
    path = tmp_path_factory.mktemp("judge") / "judge.pt"
    save_judge(judge, path, info)
    return path


def mislabelled_digits() -> tuple[GlyphSet, np.ndarray]:
    """Clean digits with WRONG of them moved to another class; returns the set and the indices of the wrong ones."""
    digits = synthetic_digits(600, size=SIZE, seed=11)
    rng = np.random.default_rng(0)
    wrong = np.sort(rng.choice(len(digits), WRONG, replace=False))
    labels = digits.labels.copy()
    labels[wrong] = (labels[wrong] + rng.integers(1, 10, WRONG)) % 10  # never the true class
    return GlyphSet(digits.images, labels, digits.classes, digits.sources, digits.source_ids, digits.provenance), wrong


def test_class_distance_z_against_a_hand_computed_robust_z():
    features = np.array([[0.0], [1.0], [2.0], [3.0], [100.0], [5.0], [5.0]])
    labels = np.array([0, 0, 0, 0, 0, 1, 1])
    # class 0: median 2, distances 2 1 0 1 98, their median 1, MAD median(1 0 1 0 97) = 1
    expected = (np.array([2.0, 1.0, 0.0, 1.0, 98.0]) - 1.0) / 1.4826
    z = class_distance_z(features, labels)
    np.testing.assert_allclose(z[:5], expected, rtol=1e-12)
    assert np.isnan(z[5:]).all()  # a class of 2 glyphs has no spread to judge by


@pytest.mark.slow  # trains a judge: seconds
def test_wrong_labels_are_flagged_and_clean_glyphs_are_not(judge_file):
    glyphs, wrong = mislabelled_digits()
    result = audit_glyphs(glyphs, load_judge(judge_file, "cpu"))
    flagged = set(np.flatnonzero(result.kinds != 0).tolist())
    caught = flagged & set(wrong.tolist())
    recall, precision = len(caught) / WRONG, len(caught) / max(len(flagged), 1)
    print(f"audit of {len(glyphs)} digits with {WRONG} wrong labels: recall {recall:.2f}, precision {precision:.2f}")
    assert recall >= 0.9 and precision >= 0.9, (recall, precision)
    for i in caught:  # a caught wrong label is read as the digit it really is
        if result.kinds[i] == 1:
            assert result.read_as[i] != glyphs.classes.text[glyphs.labels[i]]


@pytest.mark.slow
def test_audit_command_writes_report_clean_store_and_sheet(judge_file, tmp_path):
    glyphs, wrong = mislabelled_digits()
    store = tmp_path / "digits.h5"
    write_store(store, glyphs)
    report, clean, sheet = tmp_path / "audit.json", tmp_path / "clean.h5", tmp_path / "flagged.png"
    result = run_cond_lsgan("audit", store, "--judge", judge_file, "--report", report, "--out", clean, "--sheet", sheet,
                            "--device", "cpu")
    assert result.returncode == 0, result.stderr
    saved = json.loads(report.read_text(encoding="utf-8"))
    flagged = [row["index"] for row in saved["flagged_glyphs"]]
    assert saved["flagged"] == len(flagged) == saved["misread"] + saved["outliers"]
    assert result.stdout.startswith(f"audited 600 glyphs: {len(flagged)} flagged")
    assert sum(row["glyphs"] for row in saved["sources"]) == 600
    predictions = np.array([row["read_as"] == row["class"] for row in saved["flagged_glyphs"]])
    assert not predictions[[row["kind"] == "misread" for row in saved["flagged_glyphs"]]].any()
    (source,) = saved["sources"]  # one source: its read share is the judge's accuracy on the (mislabelled) store
    predictions = judge_outputs(load_judge(judge_file, "cpu"), glyphs.images).predictions
    assert source["read_share"] == pytest.approx((predictions == glyphs.labels).mean(), abs=1e-6)  # JSON keeps 6 digits
    kept = read_store(clean)
    keep = np.ones(600, bool)
    keep[flagged] = False
    np.testing.assert_array_equal(kept.images, glyphs.images[keep])
    np.testing.assert_array_equal(kept.labels, glyphs.labels[keep])
    assert kept.provenance["audit"]["misread"] == saved["misread"]
    assert Image.open(sheet).width > 0


@pytest.mark.parametrize("outlier_z", [math.nan, math.inf, 0.0, -1.0])
def test_outlier_z_must_be_positive_and_finite_from_the_library_too(judge_file, outlier_z):
    """A NaN z compares false with every distance: it once flagged no outlier at all, silently."""
    glyphs, _ = mislabelled_digits()
    with pytest.raises(InputError, match="outlier-z must be a positive finite number"):
        audit_glyphs(glyphs, load_judge(judge_file, "cpu"), outlier_z=outlier_z)


@pytest.mark.slow
def test_audit_bad_input_is_one_line(judge_file, tmp_path):
    store = tmp_path / "digits.h5"
    write_store(store, synthetic_digits(50, size=SIZE, seed=1))
    other_size = tmp_path / "big.h5"
    write_store(other_size, synthetic_digits(20, size=20, seed=1))
    cases = [
        (("audit", store, "--judge", tmp_path / "absent.pt"), ("absent.pt",)),
        (("audit", store, "--judge", judge_file, "--out", store), ("--out", "STORE")),
        (("audit", other_size, "--judge", judge_file), ("16px", "20px")),
        (("audit", store, "--judge", judge_file, "--min-confidence", "1.5"), ("--min-confidence",)),
        (("audit", store, "--judge", judge_file, "--outlier-z", "nan"), ("--outlier-z", "finite", "--help")),
        (("audit", store, "--judge", judge_file, "--outlier-z", "inf"), ("--outlier-z", "finite")),
    ]
    for arguments, fragments in cases:
        assert_one_line_error(run_cond_lsgan(*arguments), "cond-lsgan", *fragments)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["big.h5", "digits.h5"]
