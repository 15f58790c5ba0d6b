"""`model.label_init = "glyphs"`: Φ's rows start at the principal-component coordinates of each class's mean glyph.

Checked against a reference computed another way (class means by a loop, components from
the eigenvectors of the covariance matrix, not an SVD), on the models a run builds, and as
a one-line error where the model has no label map.
"""

from __future__ import annotations

import numpy as np
import torch

from cond_lsgan.config import load_config
from cond_lsgan.models.label_init import LABEL_RMS, glyph_label_rows
from cond_lsgan.training.step import TrainingStep
from data_tools.store import read_store
from helpers import REPO_ROOT, TINY_PAPER28, assert_one_line_error, run_cond_lsgan


def reference_rows(images: np.ndarray, labels: np.ndarray, classes: int, dim: int) -> np.ndarray:
    means = np.stack([images[labels == c].reshape(-1, images[0].size).mean(0) / 255.0 for c in range(classes)])
    centered = means - means.mean(0)
    values, vectors = np.linalg.eigh(centered.T @ centered)  # ascending eigenvalues
    rows = centered @ vectors[:, ::-1][:, :dim]
    return rows * LABEL_RMS / np.sqrt((rows**2).mean())


def test_rows_are_the_principal_coordinates_of_class_means_scaled_to_the_set_rms():
    rng = np.random.default_rng(0)
    shapes = rng.integers(0, 256, (6, 8, 8))  # six "characters"; each glyph is its character plus noise
    labels = rng.integers(0, 6, 120)
    images = np.clip(shapes[labels] + rng.normal(0, 20, (120, 8, 8)), 0, 255).astype(np.uint8)
    rows = glyph_label_rows(images, labels, 6, 4).double().numpy()
    expected = reference_rows(images, labels, 6, 4)
    signs = np.sign((rows * expected).sum(0))  # a component's sign is arbitrary
    assert np.allclose(rows, expected * signs, atol=1e-5)
    assert abs(np.sqrt((rows**2).mean()) - LABEL_RMS) < 1e-6
    # Classes drawn alike start near each other: draw class 5 as class 0 is drawn.
    shapes[5] = shapes[0]
    images = np.clip(shapes[labels] + rng.normal(0, 20, (120, 8, 8)), 0, 255).astype(np.uint8)
    rows = glyph_label_rows(images, labels, 6, 4).numpy()
    distances = np.linalg.norm(rows[:, None] - rows[None], axis=-1)
    assert distances[0, 5] == distances[0, 1:].min()


def test_more_components_than_the_data_has_are_zero_and_a_class_without_glyphs_sits_at_the_centre():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (9, 4, 4)).astype(np.uint8)
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])  # class 3 has no glyphs
    rows = glyph_label_rows(images, labels, 4, 10).numpy()
    assert rows.shape == (4, 10)
    # Class 3 gets the mean glyph, which (equal counts) is the mean of the other three: the centre, and
    # the four centred means then span two directions, so components 3 to 10 are zero.
    assert np.allclose(rows[3], 0, atol=1e-6)
    assert np.allclose(rows[:, 2:], 0, atol=1e-6) and np.abs(rows[:3, :2]).min() > 1e-3


def test_a_run_starts_both_label_maps_at_the_rows_and_the_ema_copy_too(digits28):
    glyphs = read_store(digits28)
    config = load_config(REPO_ROOT / "configs" / "demo.toml", [*TINY_PAPER28, "model.label_init=glyphs"])
    rows = glyph_label_rows(glyphs.images, glyphs.labels, len(glyphs.classes), config.model.embed_dim)
    trainer = TrainingStep(config, len(glyphs.classes), glyphs.image_size, torch.device("cpu"), label_rows=rows)
    for model in (trainer.generator, trainer.discriminator, trainer.generator_ema):
        assert torch.equal(model.embed.weight.detach(), rows)
    random = TrainingStep(load_config(REPO_ROOT / "configs" / "demo.toml", TINY_PAPER28), len(glyphs.classes),
                          glyphs.image_size, torch.device("cpu"))
    assert random.generator.embed.weight.std() < 0.05  # the paper's N(0, 0.02) start, unchanged by default


def test_a_model_without_a_label_map_is_a_one_line_error(few_digits32, tmp_path):
    result = run_cond_lsgan("train", "--config", REPO_ROOT / "configs" / "mnist.toml", "--data", few_digits32,
                            "--out", tmp_path / "run", "model.label_init=glyphs", "train.steps=1", "train.device=cpu")
    assert_one_line_error(result, "cond-lsgan", "model.label_init = 'glyphs' needs a conditional model")
    assert not (tmp_path / "run").exists()


def test_large_glyphs_are_averaged_down_and_chunks_do_not_change_the_rows(monkeypatch):
    """128x128 glyphs give the rows of their 64x64 block averages; a chunk smaller than the set gives the same rows."""
    import cond_lsgan.models.label_init as label_init

    rng = np.random.default_rng(2)
    small = rng.integers(0, 256, (40, 64, 64)).astype(np.uint8)
    large = small.repeat(2, axis=1).repeat(2, axis=2)  # each pixel a 2x2 block: averaging down gives `small` back
    labels = rng.integers(0, 5, 40)
    expected = glyph_label_rows(small, labels, 5, 3)
    assert torch.allclose(glyph_label_rows(large, labels, 5, 3).abs(), expected.abs(), atol=1e-5)
    monkeypatch.setattr(label_init, "CHUNK", 7)
    assert torch.allclose(glyph_label_rows(small, labels, 5, 3), expected, atol=1e-6)
