"""Evaluation: Fréchet distance against closed forms, the judge on a small digit set, scoring a
checkpoint, and one-line CLI errors (the augment experiment: test_augment_experiment.py)."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from cond_lsgan.cli import main
from cond_lsgan.config import load_config
from cond_lsgan.selection import class_mapping, parse_seeds
from cond_lsgan.judge import jitter_batch, judge_outputs, load_judge, save_judge, train_judge
from cond_lsgan.evaluation.metrics import (class_balance, frechet_distance, frechet_distance_of, mean_pairwise_distance,
                                           nearest_distances)
from cond_lsgan.evaluation.scoring import evaluate_generator
from cond_lsgan.training.loop import train
from data_tools.errors import InputError
from data_tools.store import ClassTable, GlyphSet, write_store
from data_tools.synthetic import synthetic_digits
from helpers import TINY_JUDGE, TINY_TRAIN, assert_mentions, assert_one_line_error

SIZE = 16  # small glyphs keep the judge and the models fast
NEEDS_JUDGE = pytest.mark.slow  # the judge_file fixture trains a judge for 300 steps: seconds


def test_frechet_distance_of_a_set_with_itself_is_zero():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(500, 12)) @ rng.normal(size=(12, 12))
    assert frechet_distance_of(features, features) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance_of(features, features + 1.0) == pytest.approx(12.0, rel=1e-6)  # a shift of 1 in 12 dims


def test_frechet_distance_of_diagonal_gaussians_is_the_closed_form():
    rng = np.random.default_rng(1)
    mean1, mean2 = rng.normal(size=6), rng.normal(size=6)
    var1, var2 = rng.uniform(0.1, 3.0, 6), rng.uniform(0.1, 3.0, 6)
    expected = np.sum((mean1 - mean2) ** 2) + np.sum(var1 + var2 - 2 * np.sqrt(var1 * var2))
    assert frechet_distance(mean1, np.diag(var1), mean2, np.diag(var2)) == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_of_full_covariances_matches_the_eigenvalues_of_the_product():
    # tr((AB)^½) = Σ √λ(AB): AB is similar to A^½ B A^½, so its eigenvalues are real and non-negative
    rng = np.random.default_rng(2)
    a, b = (np.cov(rng.normal(size=(40, 5)) @ rng.normal(size=(5, 5)), rowvar=False) for _ in range(2))
    eigenvalues = np.linalg.eigvals(a @ b).real.clip(min=0)
    expected = np.trace(a) + np.trace(b) - 2 * np.sqrt(eigenvalues).sum()
    assert frechet_distance(np.zeros(5), a, np.zeros(5), b) == pytest.approx(expected, rel=1e-8)


def test_diversity_nearest_and_balance_on_known_points():
    points = np.array([[0.0], [1.0], [3.0]])
    assert mean_pairwise_distance(points) == pytest.approx(2.0)  # (1 + 3 + 2) / 3
    assert math.isnan(mean_pairwise_distance(points[:1]))
    np.testing.assert_allclose(nearest_distances(np.array([[0.4], [2.9]]), points), [0.4, 0.1])
    np.testing.assert_allclose(nearest_distances(points, points, exclude_self=True), [1.0, 1.0, 2.0])
    balance = class_balance(np.array([0, 0, 1, 2]), 4)
    assert balance["counts"] == [2, 1, 1, 0] and balance["classes_predicted"] == 3
    assert balance["entropy"] == pytest.approx(1.5 * math.log(2))
    assert balance["kl_to_uniform"] == pytest.approx(math.log(4) - 1.5 * math.log(2))
    assert class_balance(np.arange(10) % 5, 5)["kl_to_uniform"] == pytest.approx(0.0, abs=1e-12)


def test_seed_lists_and_class_matching_by_text():
    assert parse_seeds("0-2") == [0, 1, 2] and parse_seeds("5,1-2,5") == [5, 1, 2]
    with pytest.raises(InputError, match="runs backwards"):
        parse_seeds("3-1")
    judge_classes, model_classes = ClassTable(["永", "和", "九"]), ClassTable(["九", "永", "年", "月"])
    assert class_mapping(model_classes, judge_classes, "the model", "the judge", used=[0, 1]).tolist() == [2, 0, -1, -1]
    with pytest.raises(InputError) as missing:
        class_mapping(model_classes, judge_classes, "the model", "the judge")
    assert_mentions(str(missing.value), "2 class(es) of the model", "not in the judge", "(3 classes)", ": 年 月")


def test_batch_augmentation_moves_ink_and_keeps_the_background():
    x = torch.zeros(4, 1, SIZE, SIZE)
    x[:, :, 5:11, 7:9] = 1.0  # a vertical bar
    moved = jitter_batch(x, torch.Generator().manual_seed(0))
    assert moved.shape == x.shape and moved.min() >= 0 and moved.max() <= 1
    assert not torch.allclose(moved, x)
    assert moved[:, :, :2].abs().max() == 0 and moved[:, :, :, -2:].abs().max() == 0  # ink stays near where it was
    assert torch.allclose(moved.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3)), rtol=0.35)
    blank = jitter_batch(torch.zeros(2, 1, SIZE, SIZE), torch.Generator().manual_seed(0))
    assert blank.abs().max() == 0


@pytest.fixture(scope="module")
def digits() -> GlyphSet:
    return synthetic_digits(500, size=SIZE, seed=7)


@pytest.fixture(scope="module")
def judge_file(digits, tmp_path_factory):
    judge, info = train_judge(digits, steps=300, seed=0, device="cpu", **TINY_JUDGE)
    path = tmp_path_factory.mktemp("judge") / "judge.pt"
    save_judge(judge, path, info)
    return path, info


@NEEDS_JUDGE
def test_judge_learns_the_digits_and_round_trips(digits, judge_file):
    path, info = judge_file
    assert info["held_out_images"] == 50 and info["train_images"] == 450
    assert info["held_out_accuracy"] >= 0.9, info
    state = torch.load(path, weights_only=True)  # plain data and tensors only
    assert state["arch"] == {"num_classes": 10, "image_size": SIZE, "channels": 8, "feature_dim": 32}
    judge = load_judge(path, "cpu")
    assert judge.classes.text == digits.classes.text
    features, logits = judge.features(digits.images[:20]), judge.logits(digits.images[:20])
    assert features.shape == (20, 32) and logits.shape == (20, 10)
    assert (logits.argmax(1).numpy() == digits.labels[:20]).mean() >= 0.9
    with pytest.raises(InputError, match="trained on 16x16 images, got 32x32"):
        judge.features(np.zeros((1, 32, 32), np.uint8))


@NEEDS_JUDGE
def test_judge_outputs_keep_the_best_classes_and_the_asked_class_probability(digits, judge_file):
    judge = load_judge(judge_file[0], "cpu")
    images, asked = digits.images[:70], (digits.labels[:70] + 3) % 10  # 70: two batches of 64
    outputs = judge_outputs(judge, images, asked, batch=64)
    with torch.no_grad():
        probabilities = torch.softmax(judge.logits(images).double(), dim=1).numpy()  # the full matrix, as a reference
    order = np.argsort(-probabilities, axis=1)
    assert outputs.top_classes.shape == (70, 5) and np.array_equal(outputs.top_classes, order[:, :5])
    assert np.array_equal(outputs.predictions, probabilities.argmax(axis=1))
    np.testing.assert_allclose(outputs.top_probability, probabilities.max(axis=1), rtol=1e-5)
    np.testing.assert_allclose(outputs.class_probability, probabilities[np.arange(70), asked], rtol=1e-5)
    part = outputs[np.array([3, 65])]
    assert np.array_equal(part.top_classes, outputs.top_classes[[3, 65]]) and part.class_probability.shape == (2,)


def test_train_judge_command_writes_a_loadable_judge(tmp_path, capsys):
    write_store(tmp_path / "d.h5", synthetic_digits(60, size=SIZE, seed=3))
    assert main(["evaluate", "train-judge", "--data", str(tmp_path / "d.h5"), "--out", str(tmp_path / "j.pt"),
                 "--steps", "5", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert "estimated run time" in captured.err
    assert "50 images of 10 classes for 5 steps" in captured.out and "held-out accuracy" in captured.out
    judge = load_judge(tmp_path / "j.pt", "cpu")
    assert judge.info["held_out_images"] == 10 and judge.info["data"] == str(tmp_path / "d.h5")


def _tiny_conditional_checkpoint(tiny_run, folder, digits):
    write_store(folder / "digits.h5", digits)
    # fp32 on every CPU (TINY_RUN's, explicit as it matters): after 3 steps the noise moves the output by a
    # fraction of a grey level, which bf16 (the default where the CPU has it) rounds away, and the pixel ratios would read 0
    return tiny_run("train.batch_size=16", "train.steps=3", "train.precision=fp32", data=folder / "digits.h5",
                    out=folder / "run").checkpoint


@NEEDS_JUDGE
def test_evaluate_conditional_generator_reports_per_class(digits, judge_file, tiny_run, tmp_path):
    checkpoint = _tiny_conditional_checkpoint(tiny_run, tmp_path, digits)
    report = evaluate_generator(checkpoint, judge_file[0], tmp_path / "digits.h5", tmp_path / "report.json",
                                per_class=6, chars="1372", device="cpu")
    saved = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert saved["generated_images"] == 24 and saved["classes"] == 4
    assert [row["class"] for row in saved["per_class"]] == ["1", "2", "3", "7"]
    assert all(row["generated"] == 6 and row["real"] == 50 for row in saved["per_class"])
    assert 0 <= saved["readability"] <= 1 and saved["real_readability"] >= 0.9  # the judge reads the real digits
    assert saved["judge_fid"] > 0 and report["diversity"]["real"] > 0
    pixel_ratios = [row["pixel_diversity_ratio"] for row in saved["per_class"]]
    assert all(ratio > 0 for ratio in pixel_ratios)
    assert saved["diversity"]["pixel_mean_ratio"] == pytest.approx(np.mean(pixel_ratios), rel=1e-3)  # the JSON is rounded
    # a model after 3 steps draws noise that the judge does not read as the digits it was asked for
    assert saved["readability"] < saved["real_readability"]
    balance = saved["prediction_balance"]
    assert 1 <= balance["classes_predicted"] <= 10 and balance["most_predicted_share"] >= 1 / 10
    assert Image.open(tmp_path / "report.png").width > 0
    # the raw weights are scored when asked for: another generator (EMA lags 3 steps behind), named in the report
    raw = evaluate_generator(checkpoint, judge_file[0], tmp_path / "digits.h5", tmp_path / "raw.json",
                             per_class=6, chars="1372", device="cpu", weights="raw")
    assert saved["weights"] == "ema" and raw["weights"] == "raw"
    assert raw["judge_fid"] != report["judge_fid"]  # the same noise through other weights (equal only for equal weights)
    again = evaluate_generator(checkpoint, judge_file[0], tmp_path / "digits.h5", tmp_path / "again.json",
                               per_class=6, chars="1372", device="cpu")
    assert again["judge_fid"] == report["judge_fid"]


@NEEDS_JUDGE
def test_evaluate_unconditional_generator_reports_class_balance(digits, judge_file, tmp_path):
    write_store(tmp_path / "digits.h5", digits)
    config = load_config(None, [*TINY_TRAIN, "train.batch_size=16", "train.steps=2"])  # the defaults' seed32, unconditional
    checkpoint = train(config, tmp_path / "digits.h5", tmp_path / "run").checkpoint
    report = evaluate_generator(checkpoint, judge_file[0], tmp_path / "digits.h5", tmp_path / "u.json", n=40, device="cpu")
    balance = report["class_balance"]
    assert sum(balance["generated"]["counts"]) == 40 and sum(balance["real"]["counts"]) == 500
    assert balance["real"]["normalised_entropy"] > 0.95  # the real digits are balanced
    assert balance["generated"]["kl_to_uniform"] >= balance["real"]["kl_to_uniform"]
    assert sum(row["generated"] for row in report["per_class"]) == 40  # grouped by predicted class


@NEEDS_JUDGE
def test_class_mismatch_between_checkpoint_and_judge_is_named(digits, judge_file, tiny_run, tmp_path):
    letters = GlyphSet(digits.images[:64], digits.labels[:64] % 4, ClassTable(["a", "b", "c", "1"]), digits.sources,
                       digits.source_ids[:64], {})
    checkpoint = _tiny_conditional_checkpoint(tiny_run, tmp_path, letters)
    with pytest.raises(InputError, match=r"3 class\(es\) of the checkpoint .* not in the judge .*: a b c"):
        evaluate_generator(checkpoint, judge_file[0], tmp_path / "digits.h5", tmp_path / "r.json", per_class=2, device="cpu")
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("make_args, fragments", [
    (lambda t: ["evaluate", "train-judge", "--data", t / "missing.h5", "--out", t / "j.pt"], ["missing.h5: no such file"]),
    (lambda t: ["evaluate", "train-judge", "--data", t / "d.h5", "--out", t / "j.pt", "--steps", "0"], ["--steps must be positive"]),
    (lambda t: ["evaluate", "generator", "--checkpoint", t / "none.pt", "--judge", t / "d.h5", "--data", t / "d.h5",
                "--out", t / "r.json"], ["not a judge file"]),
    (lambda t: ["evaluate", "augment", "--real", t / "d.h5", "--generated", t / "d.h5", "--test", t / "d.h5",
                "--out", t / "a.json", "--seeds", "2-1"], ["--seeds: range 2-1 runs backwards"]),
    (lambda t: ["experiment", "mog", "--loss", "lsgan", "--out", t / "m", "train.stpes=3"], ["unknown key train.stpes"]),
    (lambda t: ["experiment", "mog", "--loss", "bce", "--out", t / "m", "model.arch=seed32"], ["needs model.arch = 'mlp2d'"]),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, make_args, fragments):
    write_store(tmp_path / "d.h5", synthetic_digits(20, size=SIZE, seed=0))
    code = main([str(arg) for arg in make_args(tmp_path)])  # in-process: the same run_cli path as the console script
    assert_one_line_error(SimpleNamespace(returncode=code, stderr=capsys.readouterr().err), "cond-lsgan", *fragments)
