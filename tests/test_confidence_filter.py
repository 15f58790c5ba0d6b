"""`generate --judge J --min-confidence P`: every kept glyph is one the judge reads as its label, the counts add up."""

from __future__ import annotations

import numpy as np
import pytest

from cond_lsgan.cli import main as cond_lsgan_main
from cond_lsgan.judge import judge_outputs, load_judge, save_judge, train_judge
from cond_lsgan.sampling.generate import GenerateRequest, generate_pngs, generate_store
from data_tools.errors import InputError
from data_tools.store import read_store, write_store
from data_tools.synthetic import synthetic_digits
from helpers import TINY_JUDGE


@pytest.fixture(scope="module")
def model_and_judge(tiny_run, tmp_path_factory):
    """A paper28 checkpoint (200 steps on 16px digits: some glyphs readable, some not) and a judge of those digits."""
    root = tmp_path_factory.mktemp("filter")
    digits = synthetic_digits(300, size=16, seed=7)
    write_store(root / "digits.h5", digits)
    checkpoint = tiny_run("train.batch_size=32", "train.steps=200", "train.log_every=100", data=root / "digits.h5",
                          out=root / "run").checkpoint
    judge, info = train_judge(digits, steps=300, seed=0, device="cpu", **TINY_JUDGE)
    save_judge(judge, root / "judge.pt", info)
    return checkpoint, root / "judge.pt"


@pytest.mark.slow  # trains a model and a judge
def test_kept_glyphs_are_read_as_their_label_and_the_counts_add_up(model_and_judge, tmp_path, capsys):
    checkpoint, judge_path = model_and_judge
    out = tmp_path / "kept.h5"
    filtered = GenerateRequest(checkpoint, 6, all_classes=True, seed=3, device="cpu", judge=judge_path, min_confidence=0.6)
    count = generate_store(filtered, out)
    kept = read_store(out)
    report = kept.provenance["judge_filter"]
    per_class = np.bincount(kept.labels, minlength=10)
    assert count == len(kept) == sum(report["kept"]) and per_class.tolist() == report["kept"]
    assert all(k <= 6 for k in report["kept"]) and all(d >= k for d, k in zip(report["drawn"], report["kept"]))
    # Recomputed independently: the judge's probability of each kept glyph's label is at least P.
    read = judge_outputs(load_judge(judge_path, "cpu"), kept.images, kept.labels)
    assert (read.class_probability >= 0.6).all()
    err = capsys.readouterr().err
    assert f"kept {count:,} of {sum(report['drawn']):,} drawn" in err
    # Unfiltered, the same model makes rejects: the filter did work (not every glyph passes).
    plain = tmp_path / "plain.h5"
    generate_store(GenerateRequest(checkpoint, 6, all_classes=True, seed=3, device="cpu"), plain)
    everything = read_store(plain)
    assert (judge_outputs(load_judge(judge_path, "cpu"), everything.images, everything.labels).class_probability < 0.6).any()
    # Same arguments, same glyphs.
    again = tmp_path / "again.h5"
    generate_store(filtered, again)
    assert np.array_equal(read_store(again).images, kept.images)


@pytest.mark.slow  # trains a model and a judge
def test_a_class_short_of_accepted_glyphs_is_a_warning_not_a_silent_shortfall(model_and_judge, tmp_path, capsys):
    checkpoint, judge_path = model_and_judge
    code = cond_lsgan_main(["generate", "--checkpoint", str(checkpoint), "--all", "--per-class", "5", "--device", "cpu",
                            "--judge", str(judge_path), "--min-confidence", "1.0", "--max-rounds", "2",
                            "--format", "png", "--out", str(tmp_path / "pngs")])
    err = capsys.readouterr().err
    assert code == 0
    assert "warning: " in err and "class(es) got fewer than 5 glyphs the judge accepts" in err, err
    rows = (tmp_path / "pngs" / "judge_filter.csv").read_text().splitlines()
    assert rows[0] == "class_text,drawn,kept" and len(rows) == 11
    assert sum(int(r.split(",")[2]) for r in rows[1:]) == len((tmp_path / "pngs" / "labels.csv").read_text().splitlines()) - 1


def test_filter_options_are_checked_before_any_work(tmp_path):
    with pytest.raises(InputError, match="--judge and --min-confidence go together"):
        generate_store(GenerateRequest(tmp_path / "missing.pt", 1, all_classes=True, judge=tmp_path / "j.pt"),
                       tmp_path / "o.h5")
    with pytest.raises(InputError, match=r"--min-confidence must be in \(0, 1\], got 1.5"):
        generate_pngs(GenerateRequest(tmp_path / "missing.pt", 1, all_classes=True, judge=tmp_path / "j.pt",
                                      min_confidence=1.5), tmp_path / "o")
