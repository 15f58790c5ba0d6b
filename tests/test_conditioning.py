"""The additions around the label map Φ: projection D, conditional BatchNorm, spectral norm, augmentation, mode seeking.

Each against a form computed another way (one-hot matrices, explicit statistics, SVD, a
loop over pixels), and each option through training, resume and `generate`.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cond_lsgan.training.diff_augment import augment, batch_rng, cutout, translate
from cond_lsgan.config import parse_policy
from cond_lsgan.checkpoint import RUN_KEYS, load_checkpoint
from cond_lsgan.training.judge_loss import JudgeLoss
from cond_lsgan.config import ModelConfig, load_config
from cond_lsgan.judge import load_judge, save_judge, train_judge
from cond_lsgan.sampling.generate import GenerateRequest, generate_store
from cond_lsgan.training.losses import mode_seeking_term
from cond_lsgan.models import build_models
from cond_lsgan.models.conditioning import ConditionalBatchNorm
from data_tools.errors import InputError
from data_tools.store import ClassTable, GlyphSet, read_store
from data_tools.synthetic import synthetic_digits
from helpers import DEMO, TINY_JUDGE


def tiny_model(**options) -> ModelConfig:
    return ModelConfig(arch="paper28", conditional=True, z_dim=16, embed_dim=8, width=0.125, **options)


def test_projection_score_is_psi_plus_the_inner_product_with_the_class_map():
    torch.manual_seed(0)
    _, discriminator = build_models(tiny_model(d_condition="projection"), 5, 28)
    discriminator.eval()
    images, labels = torch.rand(6, 1, 28, 28), torch.tensor([0, 4, 2, 2, 1, 3])
    # By hand: D's layers without any label, then psi(h) + onehot(y) W h + b h.
    d = discriminator
    h = F.leaky_relu(d.conv1(images), 0.2)
    h = F.leaky_relu(d.conv2_bn(d.conv2(h)), 0.2).flatten(1)
    h = F.leaky_relu(d.fc1_bn(d.fc1(h)), 0.2)
    phi = F.one_hot(labels, 5).float() @ d.projection.embed.weight + d.projection.embed.bias
    expected = h @ d.projection.psi.weight.t() + d.projection.psi.bias + (phi * h).sum(1, keepdim=True)
    assert torch.allclose(discriminator(images, labels), expected, atol=1e-6)
    assert not hasattr(d, "embed") and d.score is None  # no concatenation left
    # "both": the paper's concatenated score plus the same projection term.
    torch.manual_seed(0)
    _, both = build_models(tiny_model(d_condition="both"), 5, 28)
    both.eval()
    label = both.embed(labels)
    h = F.leaky_relu(both.conv1(images), 0.2)
    h = F.leaky_relu(both.conv2_bn(both.conv2(h, label)), 0.2)
    h = F.leaky_relu(both.fc1_bn(both.fc1(torch.cat([h.flatten(1), label], 1))), 0.2)
    expected = both.score(torch.cat([h, label], 1)) + both.projection.psi(h) + (both.projection.embed(labels) * h).sum(1, keepdim=True)
    assert torch.allclose(both(images, labels), expected, atol=1e-6)


def test_conditional_batchnorm_is_batch_statistics_then_a_gain_and_bias_linear_in_the_label():
    torch.manual_seed(0)
    norm = ConditionalBatchNorm(3, 4, spatial=True)
    with torch.no_grad():
        norm.gain.normal_()
        norm.bias.normal_()
    x, label = torch.randn(5, 3, 2, 2), torch.randn(5, 4)
    mean, var = x.mean(dim=(0, 2, 3), keepdim=True), x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    gain = 1 + torch.einsum("fe,ne->nf", norm.gain, label)[:, :, None, None]
    bias = torch.einsum("fe,ne->nf", norm.bias, label)[:, :, None, None]
    assert torch.allclose(norm(x, label), gain * (x - mean) / torch.sqrt(var + 1e-5) + bias, atol=1e-5)
    # At initialisation the maps are zero: plain BatchNorm, whatever the label (build's N(0, 0.02) init leaves them).
    generator, _ = build_models(tiny_model(g_norm="conditional"), 5, 28)
    assert torch.count_nonzero(generator.up1_norm.gain) == 0 and torch.count_nonzero(generator.project_norm.bias) == 0
    assert not hasattr(generator, "up1_bn")  # nothing for generation to fold


def test_spectral_norm_makes_every_d_layer_s_largest_singular_value_one():
    torch.manual_seed(0)
    _, discriminator = build_models(tiny_model(d_spectral_norm=True, d_condition="both"), 5, 28)
    images, labels = torch.rand(8, 1, 28, 28), torch.randint(0, 5, (8,))
    for _ in range(200):  # each forward in train mode is one power iteration
        discriminator(images, labels)
    layers = [m for m in discriminator.modules() if hasattr(m, "parametrizations")]
    assert len(layers) == 5  # conv1, conv2's kernel, fc1, score, the projection's psi
    for layer in layers:
        sigma = torch.linalg.matrix_norm(layer.weight.detach().flatten(1), ord=2)
        assert abs(sigma.item() - 1.0) < 1e-3, (layer, sigma)


def test_translation_moves_each_image_and_fills_with_background():
    images = torch.rand(6, 1, 16, 16)
    out = translate(images, batch_rng(3, 7, 0, torch.device("cpu")), background=-1.0)
    stream = batch_rng(3, 7, 0, torch.device("cpu"))  # the same draws, read back
    dy, dx = torch.randint(-2, 3, (6, 1, 1), generator=stream), torch.randint(-2, 3, (6, 1, 1), generator=stream)
    for n in range(6):
        for y in range(16):
            for x in range(16):
                source_y, source_x = y - dy[n].item(), x - dx[n].item()
                inside = 0 <= source_y < 16 and 0 <= source_x < 16
                assert out[n, 0, y, x] == (images[n, 0, source_y, source_x] if inside else -1.0)


def test_cutout_blanks_one_square_of_half_the_size():
    images = torch.ones(50, 1, 16, 16)
    out = cutout(images, batch_rng(0, 0, 0, torch.device("cpu")), background=0.0)
    blanked = (out == 0).sum(dim=(1, 2, 3))
    assert ((blanked > 0) & (blanked <= 64)).all() and (blanked == 64).any()  # 8x8, cut where it overhangs the edge
    rows, columns = (out[:, 0] == 0).any(dim=2), (out[:, 0] == 0).any(dim=1)
    for n in range(50):  # one rectangle: the blank pixels are exactly the product of their rows and columns
        assert torch.equal(out[n, 0] == 0, rows[n][:, None] & columns[n][None, :])


def test_augmentation_is_one_policy_for_real_and_fake_and_passes_gradients():
    policy = parse_policy("translation,cutout")
    x = torch.rand(4, 1, 12, 12, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: augment(t, policy, batch_rng(1, 2, 1, torch.device("cpu")), 0.0), (x,))
    # The same function and draws for any batch: identical inputs give identical outputs, whichever D input they are.
    real, fake = x.detach().clone(), x.detach().clone()
    same = [augment(b, policy, batch_rng(1, 2, 1, torch.device("cpu")), 0.0) for b in (real, fake)]
    assert torch.equal(*same)
    with pytest.raises(ValueError, match="unknown augmentation flip"):
        parse_policy("translation,flip")
    with pytest.raises(InputError, match="train.augment: unknown augmentation rotate"):
        load_config(DEMO, ["train.augment=rotate"])


def test_mode_seeking_term_against_its_definition_and_its_gradient_direction():
    z = torch.tensor([[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [1.0, 3.0]])
    fake = torch.tensor([[[0.5, 0.5]], [[0.1, 0.2]], [[0.0, 0.5]], [[0.3, 0.4]]], requires_grad=True)
    # pairs (0, 2) and (1, 3): |z| distances 0.5 and 1.0; image distances 0.25 and 0.2
    expected = (0.5 / (0.25 + 1e-5) + 1.0 / (0.2 + 1e-5)) / 2
    term = mode_seeking_term(fake, z)
    assert abs(term.item() - expected) < 1e-4
    term.backward()
    # Minimising it pushes the two images of a pair apart: a descent step moves image 0 away from image 2
    # where they differ (pixel 0), and leaves the pixel where they agree alone.
    away = (-fake.grad[0] * (fake[0] - fake[2]).detach()).flatten()
    assert away[0] > 0 and away[1] == 0


@pytest.mark.parametrize("options", [
    ["model.d_condition=projection"], ["model.d_condition=both", "model.d_spectral_norm=true"],
    ["model.g_norm=conditional"], ["train.augment=translation,cutout"], ["loss.mode_seeking=1.0"],
    ["model.label_init=glyphs"],
], ids=["projection", "both-sn", "cbn", "augment", "mode-seeking", "label-init"])
def test_each_option_trains_resumes_exactly_and_generates(tiny_run, tmp_path, options):
    whole = tiny_run(*options, "train.steps=4", out=tmp_path / "whole")
    tiny_run(*options, "train.steps=2", out=tmp_path / "split")
    resumed = tiny_run(*options, "train.steps=4", out=tmp_path / "split", resume="auto")
    ours, reference = (load_checkpoint(r.checkpoint, require=RUN_KEYS) for r in (resumed, whole))
    for part in ("generator", "generator_ema", "discriminator"):
        assert ours[part].keys() == reference[part].keys()
        assert all(torch.equal(ours[part][k], reference[part][k]) for k in ours[part]), part
    out = tmp_path / "generated.h5"
    assert generate_store(GenerateRequest(resumed.checkpoint, 2, all_classes=True, device="cpu"), out) == 20
    assert read_store(out).images.shape == (20, 28, 28)


def test_the_classifier_term_is_the_judge_s_cross_entropy_matched_by_class_text(tmp_path):
    """Against a reference: the same judge's logits, classes looked up by text in a judge whose class order differs."""
    digits = synthetic_digits(200, size=16, seed=3)
    order = np.arange(10)[::-1].copy()  # the judge's class 0 is the data's class 9
    shuffled = GlyphSet(digits.images, order[digits.labels].astype(np.int32), ClassTable([digits.classes.text[i] for i in order]),
                        digits.sources, digits.source_ids, digits.provenance)
    judge, info = train_judge(shuffled, steps=30, seed=0, device="cpu", **TINY_JUDGE)
    save_judge(judge, tmp_path / "judge.pt", info)
    term = JudgeLoss(str(tmp_path / "judge.pt"), digits.classes, 16, "sigmoid", torch.device("cpu"))
    reference = load_judge(tmp_path / "judge.pt", "cpu").eval()
    fake = torch.rand(6, 1, 16, 16, requires_grad=True)
    labels = torch.tensor([0, 1, 2, 9, 9, 4])
    ours = term(fake, labels)
    expected = F.cross_entropy(reference(fake)[1], torch.as_tensor(order)[labels])
    assert torch.allclose(ours, expected, atol=1e-6)
    (grad,) = torch.autograd.grad(ours, fake)
    (expected_grad,) = torch.autograd.grad(F.cross_entropy(reference(fake)[1], torch.as_tensor(order)[labels]), fake)
    assert torch.allclose(grad, expected_grad, atol=1e-6) and grad.abs().sum() > 0  # G gets the judge's gradient
    assert all(not p.requires_grad for p in term.judge.parameters())  # the judge itself never trains


def test_training_with_the_classifier_term_resumes_exactly_and_leaves_the_judge_file_alone(digits28, tiny_run, tmp_path):
    glyphs = read_store(digits28)
    judge, info = train_judge(glyphs, steps=20, seed=0, device="cpu", **TINY_JUDGE)
    save_judge(judge, tmp_path / "judge.pt", info)
    before = (tmp_path / "judge.pt").read_bytes()
    options = [f"loss.classifier={tmp_path / 'judge.pt'}", "loss.classifier_weight=0.5"]
    whole = tiny_run(*options, "train.steps=4", out=tmp_path / "whole")
    tiny_run(*options, "train.steps=2", out=tmp_path / "split")
    resumed = tiny_run(*options, "train.steps=4", out=tmp_path / "split", resume="auto")
    ours, reference = (load_checkpoint(r.checkpoint, require=RUN_KEYS)["generator"] for r in (resumed, whole))
    assert all(torch.equal(ours[k], reference[k]) for k in ours)
    plain = load_checkpoint(tiny_run("train.steps=4").checkpoint)["generator"]
    assert any(not torch.equal(ours[k], plain[k]) for k in ours)  # the term changed G's updates
    assert (tmp_path / "judge.pt").read_bytes() == before
