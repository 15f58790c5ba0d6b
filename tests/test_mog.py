"""The 2-D mixture-of-Gaussians experiment: data, mode counting on points with known answers,
the stacked mlp2d, seeds that do not interact, and the command end to end on a few steps."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from cond_lsgan.config import Config, apply_overrides
from cond_lsgan.evaluation.mog import (MODES, RADII, evaluation_steps, mode_centres, mode_metrics, mog_config, run_mog,
                                       sample_mixture)
from cond_lsgan.models import build_models
from cond_lsgan.models.mlp2d import stack_parameters, stacked_forward, unstack_parameters
from data_tools.errors import InputError
from helpers import REPO_ROOT, run_cond_lsgan

QUICK = ["train.steps=40", "train.sample_every=20", "train.batch_size=64", "model.z_dim=16", "model.width=0.25",
         "train.device=cpu", "train.log_every=20"]


def at(centre: torch.Tensor, count: int, offset: float) -> torch.Tensor:
    """`count` points at distance `offset` from `centre`, in evenly spread directions."""
    angles = torch.arange(count) * (2 * math.pi / max(count, 1))
    return centre + offset * torch.stack([angles.cos(), angles.sin()], dim=1)


def test_mode_counting_on_points_with_known_answers():
    centres = mode_centres()
    points = torch.cat([
        at(centres[0], 25, 0.0),  # mode 0: 25 points at the centre -> covered at every radius
        at(centres[1], 19, 0.0),  # mode 1: 19 points, one short of 20 -> never covered
        at(centres[2], 30, 0.05),  # mode 2: 30 points 0.05 out -> covered at r 0.1 and 0.2, not at 0.03
        at(centres[3], 20, 0.15),  # mode 3: exactly 20 points 0.15 out -> covered at r 0.2 only
        at(torch.zeros(2), 6, 0.0),  # the origin: far from every mode
    ])
    covered, quality = mode_metrics(points, centres, radii=(0.03, 0.1, 0.2))
    assert covered.tolist() == [1, 2, 3]
    np.testing.assert_allclose(quality.numpy(), np.array([25 + 19, 25 + 19 + 30, 25 + 19 + 30 + 20]) / 100, rtol=1e-6)
    # a stack of seeds (S, N, 2) is measured seed by seed
    stacked_covered, _ = mode_metrics(torch.stack([points, points.flip(0)]), centres, radii=(0.03, 0.1, 0.2))
    assert stacked_covered.tolist() == [[1, 2, 3], [1, 2, 3]]


def test_mixture_samples_sit_on_the_eight_modes():
    centres = mode_centres()
    assert torch.allclose(centres.norm(dim=1), torch.ones(MODES))
    points = sample_mixture(4000, torch.Generator().manual_seed(0), centres)
    distances = torch.cdist(points, centres)
    nearest = distances.min(dim=1)
    assert nearest.values.max() < 0.06  # 6 std
    assert abs(nearest.values.pow(2).mean().div(2).sqrt().item() - 0.01) < 0.001  # per-axis std 0.01
    assert torch.bincount(nearest.indices, minlength=MODES).min() > 400  # each mode about 1/8
    covered, quality = mode_metrics(points[:2500], centres)
    assert covered.tolist() == [MODES] * len(RADII) and quality.min() > 0.98


def test_stacked_forward_is_each_models_own_forward():
    config = apply_overrides(Config(), ["model.arch=mlp2d", "model.z_dim=8", "model.width=0.25"])
    models = []
    for seed in range(3):
        torch.manual_seed(seed)
        models.append(build_models(config.model, 0, 0))
    z = torch.randn(3, 5, 8)
    stacked = stack_parameters([g for g, _ in models])
    expected = torch.stack([g(z[i]) for i, (g, _) in enumerate(models)])
    assert torch.allclose(stacked_forward(stacked, z), expected, atol=1e-6)
    scores = stacked_forward(stack_parameters([d for _, d in models]), expected)
    assert scores.shape == (3, 5, 1)
    copy = build_models(config.model, 0, 0)[0]
    assert torch.allclose(unstack_parameters(stacked, 2, copy)(z[2]), expected[2], atol=1e-6)


def test_seeds_trained_together_match_a_seed_trained_alone(tmp_path):
    config = mog_config(REPO_ROOT / "configs" / "mog8.toml", QUICK, "lsgan")
    run_mog(config, [0, 1], tmp_path / "pair")
    run_mog(config, [1], tmp_path / "alone")
    together = torch.load(tmp_path / "pair" / "lsgan" / "seed_1" / "generator.pt", weights_only=True)["generator"]
    alone = torch.load(tmp_path / "alone" / "lsgan" / "seed_1" / "generator.pt", weights_only=True)["generator"]
    for key in alone:
        assert torch.allclose(together[key], alone[key], atol=1e-5), key
    first = json.loads((tmp_path / "pair" / "lsgan" / "seed_0" / "metrics.json").read_text())
    assert first["steps"] == [0, 20, 40] == evaluation_steps(40, 20)
    assert all(len(first[key][str(r)]) == 3 for key in ("modes_covered", "high_quality") for r in RADII)


@pytest.mark.slow  # the CLI in a subprocess
def test_mog_command_writes_seeds_summary_and_figure(tmp_path):
    out = tmp_path / "mog"
    result = run_cond_lsgan("experiment", "mog", "--loss", "bce", "--seeds", "0-1", "--out", out, *QUICK)
    assert result.returncode == 0, result.stderr
    assert "estimated run time" in result.stderr and "seed-steps/s" in result.stderr
    chi_square = [*QUICK, "loss.a=-1", "loss.c=0"]  # a second loss, with the chi-square coding, into the same folder
    run_mog(mog_config(REPO_ROOT / "configs" / "mog8.toml", chi_square, "lsgan"), [3], out)
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["losses"]) == {"bce", "lsgan"}
    assert summary["losses"]["lsgan"]["loss_settings"] == {"kind": "lsgan", "a": -1.0, "b": 1.0, "c": 0.0, "mode_seeking": 0.0,
                                                           "classifier": "", "classifier_weight": 0.1}  # the whole [loss] section
    assert summary["losses"]["lsgan"]["name"] == "LSGAN a=-1 b=1 c=0" and summary["losses"]["bce"]["name"] == "regular GAN"
    assert summary["losses"]["bce"]["seeds"] == [0, 1] and summary["losses"]["lsgan"]["seeds"] == [3]
    final = summary["losses"]["bce"]["by_radius"]["0.1"]["40"]["modes_covered"]
    assert set(final) == {"mean", "std", "min", "max"} and 0 <= final["min"] <= final["mean"] <= final["max"] <= MODES
    for seed in (0, 1):
        folder = out / "bce" / f"seed_{seed}"
        with np.load(folder / "samples.npz") as samples:
            assert sorted(samples) == ["step_0000000", "step_0000020", "step_0000040"]
            assert samples["step_0000040"].shape == (2500, 2)
        assert Image.open(folder / "samples.png").width > 3 * 100
    assert Image.open(out / "compare.png").height > 500
    assert json.loads((out / "bce" / "run.json").read_text())["seed_steps_per_s"] > 0


def test_shipped_mog_config_is_the_papers():
    config = mog_config(REPO_ROOT / "configs" / "mog8.toml", [], "bce")
    assert config.loss.kind == "bce" and config.model.arch == "mlp2d" and config.model.z_dim == 256
    train = config.train
    assert (train.steps, train.batch_size, train.lr_d, train.lr_g, train.beta1) == (35000, 512, 1e-4, 1e-3, 0.5)
    generator, discriminator = build_models(config.model, 0, 0)
    assert [layer.out_features for layer in generator.linears()] == [128, 128, 2]
    assert [layer.out_features for layer in discriminator.linears()] == [128, 128, 1]
    with pytest.raises(InputError, match="--loss must be one of"):
        mog_config(REPO_ROOT / "configs" / "mog8.toml", [], "wgan")
