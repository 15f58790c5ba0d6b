"""Conditional training and generation end to end on tiny data: classes in, classes out."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from cond_lsgan.config import load_config
from cond_lsgan.sampling.generate import GenerateRequest, generate_pngs, generate_store, sample_grid
from cond_lsgan.selection import select_classes
from cond_lsgan.training.loop import train
from data_tools.errors import InputError
from data_tools.store import ClassTable, GlyphSet, read_store, write_store
from data_tools.synthetic import synthetic_digits
from helpers import REPO_ROOT, TINY_TRAIN, assert_mentions, run_data_tools


@pytest.fixture(scope="module")
def checkpoint(tiny_run, tmp_path_factory):
    folder = tmp_path_factory.mktemp("conditional")
    write_store(folder / "digits.h5", synthetic_digits(40, size=28, seed=4))
    return tiny_run("train.steps=2", data=folder / "digits.h5", out=folder / "run").checkpoint


def test_generates_the_requested_classes_in_order(checkpoint, tmp_path):
    count = generate_store(GenerateRequest(checkpoint, per_class=3, chars="73", seed=1, device="cpu"), tmp_path / "gen.h5")
    generated = read_store(tmp_path / "gen.h5")
    assert count == 6 and generated.images.shape == (6, 28, 28)
    assert generated.classes.text == [str(d) for d in range(10)]  # the model's whole class table
    assert generated.labels.tolist() == [7, 7, 7, 3, 3, 3]
    assert not np.array_equal(generated.images[0], generated.images[1])  # different noise per image
    generate_store(GenerateRequest(checkpoint, per_class=1, indices="0,5-7", device="cpu"), tmp_path / "range.h5")
    assert read_store(tmp_path / "range.h5").labels.tolist() == [0, 5, 6, 7]
    generate_store(GenerateRequest(checkpoint, per_class=2, all_classes=True, device="cpu"), tmp_path / "all.h5")
    assert np.bincount(read_store(tmp_path / "all.h5").labels).tolist() == [2] * 10


def test_class_selection_errors(checkpoint, tmp_path):
    classes = ClassTable(["永", "和", "九"])
    assert select_classes(classes, chars="九永") == [2, 0]
    with pytest.raises(InputError) as missing:
        select_classes(classes, chars="永年月")
    assert_mentions(str(missing.value), "not in the model's class table", "(3 classes)", "'年', '月'")
    assert "'永'" not in str(missing.value)  # only the missing characters are named
    with pytest.raises(InputError, match="outside the model's classes 0-2"):
        select_classes(classes, indices="1-3")
    with pytest.raises(InputError, match="exactly one of"):
        select_classes(classes, chars="永", all_classes=True)
    with pytest.raises(InputError, match="this model is conditional: choose classes"):
        generate_store(GenerateRequest(checkpoint, per_class=2, device="cpu"), tmp_path / "x.h5")
    with pytest.raises(InputError, match="not in the model's class table"):
        generate_store(GenerateRequest(checkpoint, per_class=2, chars="A", device="cpu"), tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists()


def test_png_output_with_labels_csv(checkpoint, tmp_path):
    out = tmp_path / "pngs"
    assert generate_pngs(GenerateRequest(checkpoint, per_class=2, chars="41", device="cpu"), out) == 4
    with open(out / "labels.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["path"], r["class_index"], r["class_text"]) for r in rows] == [
        ("4_4/00000.png", "4", "4"), ("4_4/00001.png", "4", "4"), ("1_1/00000.png", "1", "1"), ("1_1/00001.png", "1", "1")]
    stored = generate_store(GenerateRequest(checkpoint, per_class=2, chars="41", device="cpu"), tmp_path / "same.h5")
    images = read_store(tmp_path / "same.h5").images
    for row, image in zip(rows, images):  # the PNGs hold exactly the images the store gets
        np.testing.assert_array_equal(np.asarray(Image.open(out / row["path"])), image)
    with pytest.raises(InputError, match="already exists and is not an empty folder"):
        generate_pngs(GenerateRequest(checkpoint, per_class=1, chars="4", device="cpu"), out)
    assert stored == 4


def test_sample_grids(checkpoint, tmp_path):
    rows = sample_grid(checkpoint, tmp_path / "rows.png", n=5, chars="123", device="cpu")
    cell = 2 * 28 + 2
    width, height = Image.open(rows).size
    assert width == 5 * cell + 2 and height > 3 * cell  # 3 captioned rows of 5
    path = sample_grid(checkpoint, tmp_path / "mix.png", n=2, interpolate="1,7", device="cpu")
    assert Image.open(path).size[0] == 9 * cell + 2  # 9 mixing weights from 1 to 7
    with pytest.raises(InputError, match="--interpolate takes two classes"):
        sample_grid(checkpoint, tmp_path / "bad.png", interpolate="1", device="cpu")


def test_shipped_conditional_configs_load():
    for name, arch in (("hwdb3740", "paper28"), ("glyphs-cpu", "paper28"), ("glyphs-gpu", "paper28"), ("mnist-cond", "seed32")):
        config = load_config(REPO_ROOT / "configs" / f"{name}.toml")
        assert config.model.arch == arch and config.model.conditional
    paper = load_config(REPO_ROOT / "configs" / "hwdb3740.toml")
    assert (paper.model.z_dim, paper.model.embed_dim, paper.train.order, paper.train.batch_size) == (1024, 256, "d_then_g", 64)
    # The paper's recipe stays exact: every addition beyond it is off there.
    assert (paper.model.label_init, paper.model.d_condition, paper.model.g_norm, paper.model.d_spectral_norm) == (
        "random", "concat", "batch", False)
    assert (paper.train.augment, paper.loss.mode_seeking, paper.loss.classifier) == ("", 0.0, "")


def test_conditional_seed32_trains_and_resumes(tmp_path):
    write_store(tmp_path / "digits.h5", synthetic_digits(32, size=32, seed=5))
    overrides = [*TINY_TRAIN, "model.conditional=true", "model.embed_dim=8"]  # on the defaults' seed32
    result = train(load_config(None, [*overrides, "train.steps=2"]), tmp_path / "digits.h5", tmp_path / "run")
    assert result.step == 2
    result = train(load_config(None, [*overrides, "train.steps=3"]), tmp_path / "digits.h5", tmp_path / "run", resume="auto")
    assert result.step == 3 and (tmp_path / "run" / "samples" / "step_0000003.png").is_file()


@pytest.mark.slow  # runs `data-tools merge`
def test_generated_store_merges_with_real_data_by_class_text(checkpoint, tmp_path):
    """`data-tools merge real.h5 gen.h5`: generated 7s join the real 7s, whatever each file's class order."""
    rng = np.random.default_rng(0)
    real_images = rng.integers(0, 256, size=(6, 28, 28), dtype=np.uint8)
    real_classes = ClassTable(["7", "永", "3"])  # another order, and a class the model lacks
    write_store(tmp_path / "real.h5", GlyphSet(real_images, np.array([0, 0, 1, 2, 2, 1], np.int32), real_classes,
                                               ["font A"], np.zeros(6, np.int32), {"test": True}))
    generate_store(GenerateRequest(checkpoint, per_class=2, chars="73", seed=3, device="cpu"), tmp_path / "gen.h5")
    generated = read_store(tmp_path / "gen.h5")
    merged_path = tmp_path / "merged.h5"
    result = run_data_tools("merge", tmp_path / "real.h5", tmp_path / "gen.h5", "--out", merged_path)
    assert result.returncode == 0, result.stderr
    merged = read_store(merged_path)
    texts = [merged.classes.text[label] for label in merged.labels]
    assert texts == ["7", "7", "永", "3", "3", "永"] + ["7", "7", "3", "3"]
    assert merged.classes.text[:3] == ["7", "永", "3"]  # the first input keeps its indices
    assert sorted(merged.classes.text) == sorted(set(real_classes.text) | set(generated.classes.text))
    np.testing.assert_array_equal(merged.images[:6], real_images)
    np.testing.assert_array_equal(merged.images[6:], generated.images)
    source_names = [merged.sources[i] for i in merged.source_ids]
    assert source_names[:6] == ["font A"] * 6 and all(name.startswith("generated:") for name in source_names[6:])
