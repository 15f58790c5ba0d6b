"""`evaluate augment`: the generated share of the classifier's batches, the per-class view against a
loop over test images, the report of two generated sets end to end (and the same report from one process
per seed, combined), and bad input as one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from cond_lsgan.cli import main
from cond_lsgan.evaluation.augment_experiment import arm_table, class_accuracies, per_class_view, summary_text
from cond_lsgan.judge import accuracy, train_classifier
from data_tools.store import ClassTable, GlyphSet, write_store
from data_tools.synthetic import synthetic_digits
from helpers import REPO_ROOT, TINY_JUDGE, assert_one_line_error, run_cond_lsgan

SIZE = 16
JSON = 2e-6  # the report keeps 6 digits


def test_extra_images_make_the_stated_share_of_each_batch():
    # the real set lacks the digit 9; only the extra set has it: the classifier reads 9s
    # only if the extra images reach its batches, and not at all with a share of 0
    digits = synthetic_digits(400, size=SIZE, seed=3)
    real = digits.labels != 9
    nines = (digits.images[~real], digits.labels[~real])
    test = synthetic_digits(100, size=SIZE, seed=4)
    test_nines = test.images[test.labels == 9], test.labels[test.labels == 9]

    def trained(share: float, extra=nines):
        return train_classifier(digits.images[real], digits.labels[real], 10, 150, seed=0, device="cpu",
                                extra=extra, extra_share=share, **TINY_JUDGE)

    with_nines = trained(0.25)
    assert accuracy(with_nines, *test_nines) >= 0.8
    assert accuracy(with_nines, test.images, test.labels) >= 0.5  # the real digits are learnt too
    assert accuracy(trained(0.0), *test_nines) == 0.0
    # a share of 0 and no extra set train the same weights (the judge's draws are unchanged)
    plain, none_drawn = trained(0.0, extra=None), trained(0.0)
    for a, b in zip(plain.state_dict().values(), none_drawn.state_dict().values()):
        assert torch.equal(a, b)


def test_per_class_view_matches_a_loop_over_the_test_images():
    labels = np.array([0, 0, 1, 1, 1, 3, 3, 3, 3])  # class 2 has no test images
    rng = np.random.default_rng(0)
    correct = {arm: [rng.random(len(labels)) < 0.5 for _ in range(3)] for arm, _, _ in arm_table(["gen.h5"])}
    view = per_class_view(class_accuracies(correct, labels, ["a", "b", "c", "d"]), "real", "real+generated", listed=1)
    assert view["class_text"] == ["a", "b", "d"] and view["classes"] == 3
    expected = {}
    for arm in correct:
        expected[arm] = []
        for cls in (0, 1, 3):
            rows = [i for i, label in enumerate(labels) if label == cls]
            expected[arm].append(sum(hit[i] for hit in correct[arm] for i in rows) / (len(rows) * 3))
        assert view["accuracy"][arm] == pytest.approx(expected[arm])
    gains = np.array(expected["real+generated"]) - np.array(expected["real"])
    assert view["gaining"] == (gains > 0).sum() and view["losing"] == (gains < 0).sum()
    assert view["gaining"] + view["losing"] + view["unchanged"] == 3
    if gains.max() > 0:
        assert view["most_gained"] == [{"class": "abd"[gains.argmax()], "gain": pytest.approx(gains.max()),
                                        "real": pytest.approx(expected["real"][gains.argmax()]),
                                        "real+generated": pytest.approx(expected["real+generated"][gains.argmax()])}]
    if gains.min() < 0:
        assert view["most_lost"][0]["class"] == "abd"[gains.argmin()]


def test_arms_are_two_baselines_and_two_per_generated_set():
    assert arm_table(["runs/gen.h5"]) == [("real", False, None), ("real+classical", True, None),
                                          ("real+generated", False, 0), ("real+classical+generated", True, 0)]
    assert [name for name, _, _ in arm_table(["a/random.h5", "a/styled.h5"])][2:] == [
        "real+generated [random]", "real+classical+generated [random]",
        "real+generated [styled]", "real+classical+generated [styled]"]
    assert [(name, which) for name, _, which in arm_table(["a/gen.h5", "b/gen.h5"])][4:] == [
        ("real+generated [2: gen]", 1), ("real+classical+generated [2: gen]", 1)]


@pytest.mark.slow  # the CLI in a subprocess, six classifiers for each of two seeds
def test_augment_command_reports_every_arm_of_two_generated_sets_end_to_end(tmp_path):
    real = synthetic_digits(120, size=SIZE, seed=11)
    write_store(tmp_path / "real.h5", real)
    write_store(tmp_path / "test.h5", synthetic_digits(60, size=SIZE, seed=12))
    # "generated" images with a class table in another order: matched by text, not index
    reordered = ClassTable(list(reversed(real.classes.text)))
    extra = synthetic_digits(60, size=SIZE, seed=13)
    write_store(tmp_path / "gen.h5", GlyphSet(extra.images, 9 - extra.labels, reordered, ["generated:x"], extra.source_ids, {}))
    write_store(tmp_path / "more.h5", synthetic_digits(40, size=SIZE, seed=14))
    result = run_cond_lsgan("evaluate", "augment", "--real", tmp_path / "real.h5", "--generated", tmp_path / "gen.h5",
                            tmp_path / "more.h5",
                            "--test", tmp_path / "test.h5", "--out", tmp_path / "aug.json", "--seeds", "0-1", "--steps", "30",
                            "--generated-share", "0.25", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert "estimated run time" in result.stderr
    report = json.loads((tmp_path / "aug.json").read_text(encoding="utf-8"))
    arms = ["real", "real+classical", "real+generated [gen]", "real+classical+generated [gen]",
            "real+generated [more]", "real+classical+generated [more]"]
    assert [run["seed"] for run in report["runs"]] == [0, 1] and list(report["accuracy"]) == arms
    assert report["generated_share"] == 0.25 and report["generated_images"] == [60, 40] and report["test_images"] == 60
    for arm in arms:
        assert report["accuracy"][arm]["mean"] == pytest.approx(np.mean([run[arm]["top1"] for run in report["runs"]]), abs=JSON)
    baseline = report["baseline"]
    assert baseline == max(("real", "real+classical"), key=lambda arm: report["accuracy"][arm]["mean"])
    assert list(report["gain_over_baseline"]) == arms[2:]
    for arm in arms[2:]:
        differences = [run[arm]["top1"] - run[baseline]["top1"] for run in report["runs"]]
        assert report["gain_over_baseline"][arm]["mean"] == pytest.approx(np.mean(differences), abs=JSON)
        assert report["gain_over_baseline"][arm]["std"] == pytest.approx(np.std(differences, ddof=1), abs=JSON)
    # per-class accuracies weighted by the classes' test counts give back each arm's accuracy
    view = report["per_class"]
    counts = np.array([6] * 10)  # synthetic_digits cycles the labels: 60 images, 6 per digit
    for arm in arms:
        assert np.dot(view["accuracy"][arm], counts) / counts.sum() == pytest.approx(report["accuracy"][arm]["mean"], abs=JSON)
    assert f"gain over {baseline}" in result.stdout
    # One process per seed, combined by benchmarks/combine_augment.py: the same report as both seeds in one run.
    for seed in (0, 1):
        single = run_cond_lsgan("evaluate", "augment", "--real", tmp_path / "real.h5", "--generated", tmp_path / "gen.h5",
                                tmp_path / "more.h5", "--test", tmp_path / "test.h5", "--out", tmp_path / f"s{seed}.json",
                                "--seeds", str(seed), "--steps", "30", "--generated-share", "0.25", "--device", "cpu")
        assert single.returncode == 0, single.stderr
    combined = subprocess.run([sys.executable, REPO_ROOT / "benchmarks" / "combine_augment.py", tmp_path / "s0.json",
                               tmp_path / "s1.json", "--out", tmp_path / "both.json"], capture_output=True, text=True)
    assert combined.returncode == 0, combined.stderr
    both = json.loads((tmp_path / "both.json").read_text(encoding="utf-8"))
    assert summary_text(report).split("\nper class")[0] in combined.stdout  # the accuracy and gain lines
    for key in ("accuracy", "baseline", "gain_over_baseline", "runs", "seeds"):
        assert leaves(both[key]) == pytest.approx(leaves(report[key]), abs=2 * JSON), key
    # The per-class view compares the arm of largest mean gain; two arms of equal gain (the reports hold 6 digits)
    # may be picked either way, and then each view must still be right for the arm it picked.
    compared = both["per_class"]["compared"], report["per_class"]["compared"]
    gains = [report["gain_over_baseline"][arm]["mean"] for arm in compared]
    assert gains[0] == pytest.approx(gains[1], abs=2 * JSON)
    assert both["per_class"]["accuracy"] == {arm: pytest.approx(values, abs=2 * JSON)
                                             for arm, values in report["per_class"]["accuracy"].items()}
    if compared[0] == compared[1]:
        for count in ("gaining", "losing", "unchanged"):
            assert both["per_class"][count] == report["per_class"][count]

def leaves(tree) -> list:
    """The numbers of a JSON tree in order, keys and strings as they are (pytest.approx reads no nested dicts)."""
    if isinstance(tree, dict):
        return [item for key, value in tree.items() for item in (key, *leaves(value))]
    if isinstance(tree, list):
        return [item for value in tree for item in leaves(value)]
    return [tree]


@pytest.mark.parametrize("extra_args, fragment", [
    (["--generated-share", "1.0"], "--generated-share must be between 0 and 1"),
    (["--generated-share", "0"], "got 0.0"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, extra_args, fragment):
    write_store(tmp_path / "d.h5", synthetic_digits(20, size=SIZE, seed=0))
    code = main(["evaluate", "augment", "--real", str(tmp_path / "d.h5"), "--generated", str(tmp_path / "d.h5"),
                 "--test", str(tmp_path / "d.h5"), "--out", str(tmp_path / "a.json"), *extra_args])
    assert_one_line_error(SimpleNamespace(returncode=code, stderr=capsys.readouterr().err), "cond-lsgan", fragment)
