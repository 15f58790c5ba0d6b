"""Merging stores (classes and sources matched by name) and splitting them (by source, by fraction)."""

from __future__ import annotations

import numpy as np
import pytest

from data_tools.errors import InputError
from data_tools.merge import merge_stores
from data_tools.split import fraction_mask, split_store
from data_tools.store import ClassTable, StoreWriter, read_store, validate_store


def write_store(path, labels, sources, source_ids, classes, size=4, seed=0, provenance=None):
    """A store whose image i is filled with a value unique to sample i (so samples can be traced)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(len(labels), size, size), dtype=np.uint8)
    with StoreWriter(path, size, ClassTable(list(classes)), list(sources), provenance or {"made": path.name}) as writer:
        writer.append(images, labels, source_ids)
    return images


def named(glyphs):
    """(class text, source name) of each sample."""
    return [(glyphs.classes.text[l], glyphs.sources[s]) for l, s in zip(glyphs.labels, glyphs.source_ids)]


def test_merge_matches_classes_and_sources_by_name(tmp_path):
    a = write_store(tmp_path / "a.h5", [0, 1, 2, 2], ["font A", "font B"], [0, 1, 0, 1], ["a", "b", "啊"], seed=1)
    b = write_store(tmp_path / "b.h5", [0, 1, 2, 0], ["font B", "writer 1"], [0, 1, 1, 0], ["啊", "c", "a"], seed=2)
    before = named(read_store(tmp_path / "a.h5")) + named(read_store(tmp_path / "b.h5"))

    summary = merge_stores([tmp_path / "a.h5", tmp_path / "b.h5"], tmp_path / "ab.h5")
    merged = read_store(tmp_path / "ab.h5")
    assert merged.classes.text == ["a", "b", "啊", "c"]
    assert merged.classes.codepoint == [ord("a"), ord("b"), ord("啊"), ord("c")]
    assert merged.sources == ["font A", "font B", "writer 1"]
    np.testing.assert_array_equal(merged.images, np.concatenate([a, b]))
    np.testing.assert_array_equal(merged.labels, [0, 1, 2, 2, 2, 3, 0, 2])
    assert named(merged) == before
    assert (summary.images, summary.classes, summary.sources) == (8, 4, 3)
    inputs = merged.provenance["inputs"]
    assert [entry["path"] for entry in inputs] == [str(tmp_path / "a.h5"), str(tmp_path / "b.h5")]
    assert [entry["provenance"] for entry in inputs] == [{"made": "a.h5"}, {"made": "b.h5"}]
    assert merged.provenance["command"] == "data-tools merge"


def test_merge_carries_code_points_and_rejects_mixed_sizes_and_repeats(tmp_path):
    with StoreWriter(tmp_path / "g.h5", 4, ClassTable(["generated", "x"], [-1, 120]), ["run"], {}) as writer:
        writer.append(np.zeros((2, 4, 4), np.uint8), [0, 1], 0)
    write_store(tmp_path / "small.h5", [0], ["s"], [0], ["x"], size=4)
    write_store(tmp_path / "big.h5", [0], ["s"], [0], ["x"], size=6)
    merge_stores([tmp_path / "g.h5", tmp_path / "small.h5"], tmp_path / "gs.h5")
    assert read_store(tmp_path / "gs.h5").classes.codepoint == [-1, 120]
    with pytest.raises(InputError, match=r"cannot merge .*big.h5 \(6x6 images\) with .*g.h5 \(4x4\): image sizes differ"):
        merge_stores([tmp_path / "g.h5", tmp_path / "small.h5", tmp_path / "big.h5"], tmp_path / "out.h5")
    with pytest.raises(InputError, match="given twice"):
        merge_stores([tmp_path / "g.h5", tmp_path / "small.h5", tmp_path / "g.h5"], tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists()


def test_split_by_held_out_source_keeps_full_tables(tmp_path):
    labels = [0, 1, 2, 0, 1, 2, 0, 1]
    source_ids = [0, 1, 2, 1, 0, 2, 2, 0]
    images = write_store(tmp_path / "all.h5", labels, ["font A", "font B", "writer 1"], source_ids, ["a", "b", "啊"])
    summary = split_store(tmp_path / "all.h5", tmp_path / "train.h5", tmp_path / "test.h5", holdout_sources=["font B", "writer 1"])
    train, test = read_store(tmp_path / "train.h5"), read_store(tmp_path / "test.h5")
    held = np.isin(source_ids, [1, 2])
    np.testing.assert_array_equal(test.images, images[held])
    np.testing.assert_array_equal(train.images, images[~held])
    np.testing.assert_array_equal(test.labels, np.array(labels)[held])
    np.testing.assert_array_equal(train.source_ids, np.array(source_ids)[~held])
    for part in (train, test):
        assert part.classes.text == ["a", "b", "啊"] and part.sources == ["font A", "font B", "writer 1"]
    assert (summary.train_images, summary.test_images) == (3, 5)
    assert test.provenance["part"] == "test" and test.provenance["holdout_sources"] == ["font B", "writer 1"]
    assert train.provenance["input_provenance"] == {"made": "all.h5"}


def test_unknown_holdout_source_lists_the_available_ones(tmp_path):
    write_store(tmp_path / "all.h5", [0, 1], ["font A", "font B"], [0, 1], ["a", "b"])
    with pytest.raises(InputError, match="has no source 'font C'; its sources are: font A, font B"):
        split_store(tmp_path / "all.h5", tmp_path / "train.h5", tmp_path / "test.h5", holdout_sources=["font A", "font C"])
    with pytest.raises(InputError, match="train set would be empty"):
        split_store(tmp_path / "all.h5", tmp_path / "train.h5", tmp_path / "test.h5", holdout_sources=["font A", "font B"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["all.h5"]


def test_fraction_per_class_counts():
    counts = [10, 5, 1, 2, 3, 0, 4]  # F=0.3: 3, 1.5->2 (half up), 0 (one sample), 0.6->1, 0.9->1, 0, 1.2->1
    labels = np.repeat(np.arange(len(counts)), counts)
    np.random.default_rng(5).shuffle(labels)
    mask = fraction_mask(labels, len(counts), 0.3, seed=0)
    assert np.bincount(labels[mask], minlength=len(counts)).tolist() == [3, 2, 0, 1, 1, 0, 1]
    mask = fraction_mask(labels, len(counts), 0.9, seed=0)  # every class keeps at least one sample in train
    assert np.bincount(labels[mask], minlength=len(counts)).tolist() == [9, 4, 0, 1, 2, 0, 3]
    for bad in (0, 1, -0.5, 1.5):
        with pytest.raises(InputError, match="between 0 and 1"):
            fraction_mask(labels, len(counts), bad, seed=0)


def test_fraction_split_is_seeded_and_preserves_order(tmp_path):
    labels = np.repeat([0, 1, 2], [20, 10, 6])
    images = write_store(tmp_path / "all.h5", labels, ["s"], 0, ["a", "b", "c"], seed=3)

    def split(seed, name):
        split_store(tmp_path / "all.h5", tmp_path / f"{name}-train.h5", tmp_path / f"{name}-test.h5", test_fraction=0.25, seed=seed)
        return read_store(tmp_path / f"{name}-train.h5"), read_store(tmp_path / f"{name}-test.h5")

    train, test = split(7, "first")
    again_train, again_test = split(7, "again")
    _, other_test = split(8, "other")
    assert np.bincount(test.labels, minlength=3).tolist() == [5, 3, 2]  # 5, 2.5->3, 1.5->2
    np.testing.assert_array_equal(test.images, again_test.images)
    np.testing.assert_array_equal(train.images, again_train.images)
    assert not np.array_equal(test.images, other_test.images)
    # every sample lands in exactly one part, each part in the input's order
    position = {images[i].tobytes(): i for i in range(len(images))}
    test_rows = [position[image.tobytes()] for image in test.images]
    train_rows = [position[image.tobytes()] for image in train.images]
    assert test_rows == sorted(test_rows) and train_rows == sorted(train_rows)
    assert sorted(test_rows + train_rows) == list(range(len(images)))
    assert test.provenance["seed"] == 7 and test.provenance["test_fraction"] == 0.25


def test_split_writes_neither_output_when_the_second_fails(tmp_path):
    write_store(tmp_path / "all.h5", [0, 1, 0, 1], ["font A", "font B"], [0, 1, 0, 1], ["a", "b"])
    good = tmp_path / "train.h5"
    write_store(good, [0], ["old"], [0], ["old"])
    before = good.read_bytes()
    (tmp_path / "test.h5").mkdir()  # both stores get written in full, then renaming test fails
    with pytest.raises(InputError, match="cannot write .*test.h5"):
        split_store(tmp_path / "all.h5", good, tmp_path / "test.h5", holdout_sources=["font B"])
    assert good.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["all.h5", "test.h5", "train.h5"]  # no temporaries
    assert list((tmp_path / "test.h5").iterdir()) == []
    blocked = tmp_path / "file"
    blocked.write_text("")
    with pytest.raises(InputError, match="cannot write"):  # the test output's folder cannot even be made
        split_store(tmp_path / "all.h5", good, blocked / "test.h5", holdout_sources=["font B"])
    assert good.read_bytes() == before
    split_store(tmp_path / "all.h5", good, tmp_path / "t2.h5", holdout_sources=["font B"])
    assert validate_store(good).num_images == 2  # and a successful split does replace it
