"""`cond-lsgan styles` and `generate --styles`: a face's style is found again, mixed noise lies between two styles."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import torch

from cond_lsgan.sampling.generate import GenerateRequest, generate_store
from cond_lsgan.sampling.loaded_generator import LoadedGenerator
from cond_lsgan.sampling.style_fit import fit_styles_file
from cond_lsgan.sampling.style_set import StyleSet, mixed_noise
from data_tools.store import GlyphSet, read_store, write_store
from data_tools.synthetic import synthetic_digits
from helpers import assert_one_line_error, run_cond_lsgan

GLYPHS_PER_FACE = 20


def digits16_checkpoint(tiny_run, root, seed: int, steps: int):
    """A tiny (fp32) paper28 checkpoint of 16px digits (after 300 steps its noise changes its glyphs: fitting needs that)."""
    write_store(root / "digits.h5", synthetic_digits(200, size=16, seed=7))
    return tiny_run("train.batch_size=32", f"train.steps={steps}", f"train.seed={seed}", "train.log_every=100",
                    data=root / "digits.h5", out=root / f"run{seed}").checkpoint


@pytest.fixture(scope="module")
def faces(tiny_run, tmp_path_factory):
    """A checkpoint and a store of two 'faces', each drawn by the checkpoint itself with one hidden noise vector."""
    root = tmp_path_factory.mktemp("styles")
    checkpoint = digits16_checkpoint(tiny_run, root, seed=0, steps=300)
    loaded = LoadedGenerator(checkpoint, "cpu", precision="fp32")
    hidden = loaded.generator.sample_z(2, torch.Generator().manual_seed(11), "cpu")
    labels = torch.arange(GLYPHS_PER_FACE) % 10
    images = np.concatenate([loaded.render(z.expand(GLYPHS_PER_FACE, -1), labels) for z in hidden])
    store = GlyphSet(images, np.tile(labels.numpy(), 2).astype(np.int32), loaded.classes, ["Face A", "Face B"],
                     np.repeat([0, 1], GLYPHS_PER_FACE).astype(np.int32), {})
    write_store(root / "faces.h5", store)
    return root, checkpoint, hidden


@pytest.mark.slow  # trains a tiny model and fits two styles
def test_a_face_drawn_with_one_noise_is_found_again(faces):
    root, checkpoint, hidden = faces
    styles = fit_styles_file(checkpoint, root / "faces.h5", root / "styles.pt", glyphs_per_source=GLYPHS_PER_FACE,
                             device="cpu", sheet=root / "fit.png")
    assert styles.sources == ["Face A", "Face B"]
    for entry in styles.fit:
        assert entry["glyphs"] == GLYPHS_PER_FACE
        assert entry["rmse"] < 0.35 * entry["random_rmse"], entry  # the face's style, not any noise
    # Recomputed another way: the fitted noise redraws the faces' glyphs closer than random noise does.
    loaded = LoadedGenerator(checkpoint, "cpu", precision="fp32")
    store = read_store(root / "faces.h5")
    labels = torch.as_tensor(store.labels[:GLYPHS_PER_FACE])
    for index in range(2):
        real = store.images[store.source_ids == index].astype(float)
        fitted = loaded.render(styles.noise[index].expand(GLYPHS_PER_FACE, -1), labels).astype(float)
        other = loaded.render(styles.noise[1 - index].expand(GLYPHS_PER_FACE, -1), labels).astype(float)
        assert np.sqrt(((fitted - real) ** 2).mean()) == pytest.approx(styles.fit[index]["rmse"], abs=0.5)
        assert np.abs(fitted - real).mean() < np.abs(other - real).mean()
    assert (styles.noise.abs() <= 1.0).all()  # paper28 draws U[-1, 1]: the fitted styles stay where training drew
    loaded_back = StyleSet.load(root / "styles.pt")
    assert torch.equal(loaded_back.noise, styles.noise) and loaded_back.fit == styles.fit
    assert (root / "fit.png").stat().st_size > 0


def test_mixed_noise_lies_between_two_different_styles():
    styles = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    z = mixed_noise(styles, 500, torch.Generator().manual_seed(0))
    pairs_seen, from_nearest_end = set(), []
    for vector in z:
        # Another way: the pair (a, b) and t for which (1 - t) a + t b reproduces the vector.
        fits = []
        for a, b in itertools.permutations(range(3), 2):
            direction = styles[b] - styles[a]
            t = float(torch.dot(vector - styles[a], direction) / torch.dot(direction, direction))
            residual = float((styles[a] + t * direction - vector).norm())
            fits.append((residual, a, b, t))
        residual, a, b, t = min(fits)
        assert residual < 1e-5 and -1e-6 <= t <= 1 + 1e-6
        pairs_seen.add(frozenset((a, b)))
        from_nearest_end.append(min(t, 1 - t))
    assert len(pairs_seen) == 3  # every pair of styles is used
    # t is uniform on [0, 1]: the distance to the nearer end is uniform on [0, 0.5], median 0.25.
    assert 0.2 < float(np.median(from_nearest_end)) < 0.3 and max(from_nearest_end) > 0.45
    again = mixed_noise(styles, 500, torch.Generator().manual_seed(0))
    assert torch.equal(z, again)


def test_mixed_noise_reaches_past_both_ends_and_stays_in_the_noise_bounds():
    styles = torch.tensor([[0.5, -0.5], [-0.5, 0.5]])  # one pair: t = projection onto the line through both
    far = mixed_noise(styles, 4000, torch.Generator().manual_seed(1), reach=0.5)
    direction = styles[1] - styles[0]
    t_first = (far - styles[0]) @ direction / direction.dot(direction)  # t measured from whichever style came first
    t_second = (far - styles[1]) @ -direction / direction.dot(direction)
    on_line = (styles[0] + t_first[:, None] * direction - far).norm(dim=1)
    assert float(on_line.max()) < 1e-5
    # Each sample's t is uniform on [-0.5, 1.5] from its first style: half of them lie past an end, a quarter each side.
    for t in (t_first, t_second):
        assert float(t.min()) >= -0.5 - 1e-5 and float(t.max()) <= 1.5 + 1e-5
    outside = ((t_first < 0) | (t_first > 1)).float().mean()
    assert 0.45 < float(outside) < 0.55
    # Clamped to the generator's bounds: inside them, and unchanged where the point was inside already.
    bounded = mixed_noise(styles, 4000, torch.Generator().manual_seed(1), reach=0.5, bounds=(-0.6, 0.6))
    assert float(bounded.abs().max()) <= 0.6 + 1e-6
    inside = (far.abs() <= 0.6).all(dim=1)
    assert 0 < int(inside.sum()) < 4000 and torch.equal(bounded[inside], far[inside])
    assert torch.allclose(bounded[~inside].abs().max(dim=1).values, torch.tensor(0.6))


@pytest.mark.slow  # trains a tiny model
def test_generate_with_styles_draws_the_mixed_noise(faces, tmp_path):
    root, checkpoint, _ = faces
    styles_path = root / "styles2.pt"
    fit_styles_file(checkpoint, root / "faces.h5", styles_path, glyphs_per_source=8, steps=20, device="cpu")
    out = tmp_path / "styled.h5"
    styled_request = GenerateRequest(checkpoint, 3, all_classes=True, seed=5, device="cpu", precision="fp32", styles=styles_path)
    count = generate_store(styled_request, out)
    styled = read_store(out)
    assert count == len(styled) == 30 and styled.provenance["styles"] == ["Face A", "Face B"]
    # The same images from the mixed noise drawn by hand with the seed's stream.
    loaded = LoadedGenerator(checkpoint, "cpu", precision="fp32")
    z = mixed_noise(StyleSet.load(styles_path).noise, 30, torch.Generator("cpu").manual_seed(5))
    expected = loaded.render(z, torch.arange(10).repeat_interleave(3))
    assert np.array_equal(styled.images, expected)
    plain = tmp_path / "plain.h5"
    generate_store(GenerateRequest(checkpoint, 3, all_classes=True, seed=5, device="cpu", precision="fp32"), plain)
    assert not np.array_equal(read_store(plain).images, styled.images)
    # --style-reach: the same stream drawn past the styles and clamped to the generator's noise range, recorded.
    far = tmp_path / "far.h5"
    generate_store(dataclasses.replace(styled_request, style_reach=0.5), far)
    reached = read_store(far)
    assert reached.provenance["style_reach"] == 0.5 and styled.provenance["style_reach"] == 0.0
    z = mixed_noise(StyleSet.load(styles_path).noise, 30, torch.Generator("cpu").manual_seed(5), 0.5, loaded.generator.z_bounds)
    assert np.array_equal(reached.images, loaded.render(z, torch.arange(10).repeat_interleave(3)))
    assert read_store(plain).provenance["style_reach"] is None


@pytest.mark.slow  # trains two tiny models
def test_styles_bad_input_is_one_line(faces, tiny_run, tmp_path):
    root, checkpoint, _ = faces
    styles_path = root / "styles3.pt"
    fit_styles_file(checkpoint, root / "faces.h5", styles_path, glyphs_per_source=4, steps=2, device="cpu")
    other = digits16_checkpoint(tiny_run, tmp_path, seed=1, steps=1)
    cases = [
        (["generate", "--checkpoint", other, "--all", "--per-class", "2", "--out", tmp_path / "a.h5", "--styles", styles_path],
         "fitted to another checkpoint"),
        (["generate", "--checkpoint", checkpoint, "--all", "--per-class", "2", "--out", tmp_path / "b.h5", "--styles",
          styles_path, "--truncation", "0.5"], "--truncation and --styles"),
        (["generate", "--checkpoint", checkpoint, "--all", "--per-class", "2", "--out", tmp_path / "c.h5", "--styles",
          root / "faces.h5"], "not a readable styles file"),
        (["generate", "--checkpoint", checkpoint, "--all", "--per-class", "2", "--out", tmp_path / "g.h5", "--style-reach",
          "0.5"], "--style-reach goes with --styles"),
        (["generate", "--checkpoint", checkpoint, "--all", "--per-class", "2", "--out", tmp_path / "h.h5", "--styles",
          styles_path, "--style-reach", "-1"], "--style-reach must be between 0 and 2"),
        (["styles", "--checkpoint", checkpoint, "--data", root / "faces.h5", "--out", tmp_path / "d.pt", "--sources", "Face C"],
         "no source named 'Face C'"),
        (["styles", "--checkpoint", checkpoint, "--data", root / "faces.h5", "--out", tmp_path / "e.pt", "--steps", "-1"],
         "--steps must be at least 0"),
        (["styles", "--checkpoint", checkpoint, "--data", root / "faces.h5", "--out", root / "faces.h5"], "faces.h5"),
    ]
    for args, fragment in cases:
        assert_one_line_error(run_cond_lsgan(*args), "cond-lsgan", fragment)
    assert not any((tmp_path / name).exists() for name in ("a.h5", "b.h5", "c.h5", "d.pt", "e.pt", "g.h5", "h.h5"))
    one = tmp_path / "one.pt"
    fit_styles_file(checkpoint, root / "faces.h5", one, sources=["Face A"], glyphs_per_source=4, steps=2, device="cpu")
    assert_one_line_error(run_cond_lsgan("generate", "--checkpoint", checkpoint, "--all", "--per-class", "2", "--out",
                                         tmp_path / "f.h5", "--styles", one), "cond-lsgan", "at least two fitted styles")
