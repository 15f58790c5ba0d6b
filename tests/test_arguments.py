"""Numbers checked where they are parsed, and argparse errors as one line with the --help hint (both CLIs)."""

from __future__ import annotations

import argparse

import pytest

from data_tools.arguments import SEED_LIMIT, OneLineParser, finite_float, seed_int
from helpers import assert_one_line_error, run_cond_lsgan, run_data_tools


@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-inf", "1e400"])
def test_finite_float_refuses_what_compares_false_with_every_bound(text):
    with pytest.raises(argparse.ArgumentTypeError, match="finite"):
        finite_float(text)


def test_finite_float_reads_what_float_reads():
    assert [finite_float(text) for text in ("0.5", "-2", "1e-3", "1.7e308")] == [0.5, -2.0, 0.001, 1.7e308]
    with pytest.raises(argparse.ArgumentTypeError, match="not a number: 'x'"):
        finite_float("x")


def test_seed_int_takes_exactly_the_range_torch_and_numpy_seed_from():
    import numpy as np
    import torch

    for seed in (0, 1, SEED_LIMIT - 1):
        assert seed_int(str(seed)) == seed
        torch.Generator().manual_seed(seed)  # the bounds themselves seed both
        np.random.default_rng(seed)
    for text in ("-1", str(SEED_LIMIT), "99999999999999999999999"):
        with pytest.raises(argparse.ArgumentTypeError, match="between 0 and 2\\^63 - 1"):
            seed_int(text)
    with pytest.raises(argparse.ArgumentTypeError, match="not an integer"):
        seed_int("1.5")


def test_subcommand_errors_are_one_line_of_the_subcommand(capsys):
    parser = OneLineParser(prog="tool")
    parser.add_subparsers(dest="command").add_parser("go").add_argument("--size", type=int)
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["go", "--size", "x"])
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["tool: error: argument --size: invalid int value: 'x' (see 'tool go --help')"]


@pytest.mark.slow  # starts both CLIs
def test_both_clis_answer_type_errors_in_one_line(tmp_path):
    store = tmp_path / "s.h5"
    cases = [
        (run_data_tools("render", "--chars", "a", "--size", "x", "--out", store), "data-tools",
         ("--size", "invalid int value", "(see 'data-tools render --help')")),
        (run_data_tools("split", store, "--test-fraction", "nan", "--train", tmp_path / "a.h5", "--test", tmp_path / "b.h5"),
         "data-tools", ("--test-fraction", "finite")),
        (run_cond_lsgan("styles", "--checkpoint", "c.pt", "--data", store, "--out", "s.pt", "--seed", "-1"), "cond-lsgan",
         ("--seed", "2^63")),
        (run_cond_lsgan("generate", "--checkpoint", "c.pt", "--out", "g.h5", "--n", "4", "--seed", "99999999999999999999999"),
         "cond-lsgan", ("--seed", "99999999999999999999999")),
        (run_cond_lsgan("evaluate", "generator", "--checkpoint", "c.pt", "--judge", "j.pt", "--data", store, "--out", "r.json",
                        "--seed", "-1"), "cond-lsgan", ("--seed", "2^63", "(see 'cond-lsgan evaluate generator --help')")),
        (run_cond_lsgan("generate", "--checkpoint", "c.pt", "--out", "g.h5", "--n", "4", "--truncation", "inf"), "cond-lsgan",
         ("--truncation", "finite")),
        (run_cond_lsgan("nonsense"), "cond-lsgan", ("invalid choice", "(see 'cond-lsgan --help')")),
    ]
    for result, prog, fragments in cases:
        assert_one_line_error(result, prog, *fragments)
    assert list(tmp_path.iterdir()) == []  # nothing was written
