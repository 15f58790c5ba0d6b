"""No command writes over one of its inputs: an output that is an input, however spelled, is one
error line and exit code 2, and the input is left byte for byte as it was.

Every command runs in-process (`main([...])`, the same `run_cli` path as the console scripts)
from a working folder, with the input spelled four ways against the output: the same path,
`./x` against `../dir/x`, the output a symbolic link to the input, and a hard link to it.
The check comes before any work, so nothing at all is written in the folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from cond_lsgan import cli as cond_lsgan_cli
from cond_lsgan.configs import shipped_config
from cond_lsgan.judge import save_judge, train_judge
from data_tools import cli as data_tools_cli
from data_tools.errors import InputError
from data_tools.gnt import encode_gnt_record
from data_tools.paths import check_outputs_apart
from data_tools.store import read_store
from fontdata import NOTO_SANS_SC, subset_font
from helpers import TINY_RUN, assert_one_line_error, random_digits, write_idx_dir

IDX, IDX_LABELS = "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"
COMPANIONS = {IDX: [IDX_LABELS]}  # files a target needs beside it


@pytest.fixture(scope="module")
def sources(tmp_path_factory, few_digits28, tiny_run) -> dict[str, Path]:
    """One real file of every kind the commands read, made once; each test copies the one it targets."""
    root = tmp_path_factory.mktemp("inputs")
    images, labels = random_digits(4, size=28, seed=0)
    write_idx_dir(root, "test", images, labels, gz=True)
    (root / "x.gnt").write_bytes(b"".join(encode_gnt_record(str(label), 255 - image) for image, label in zip(images, labels)))
    (root / "chars.txt").write_text("0\n1\n", encoding="utf-8")
    subset_font(NOTO_SANS_SC, "01", root / "f.otf", "Digits Only")
    shutil.copy(shipped_config("mog8.toml"), root / "mog.toml")
    checkpoint = tiny_run("train.steps=1", data=few_digits28, out=root / "run").checkpoint
    judge, info = train_judge(read_store(few_digits28), steps=1, seed=0, device="cpu", channels=4, feature_dim=8)
    save_judge(judge, root / "judge.pt", info)
    return {"a.h5": few_digits28, "ck.pt": checkpoint, "judge.pt": root / "judge.pt", "x.gnt": root / "x.gnt",
            IDX: root / IDX, IDX_LABELS: root / IDX_LABELS, "chars.txt": root / "chars.txt", "f.otf": root / "f.otf", "mog.toml": root / "mog.toml"}


# (id, the input's file name, (main, prog, args(input, output, sources) -> argv))
def _data_tools(args):
    return data_tools_cli.main, "data-tools", args


def _cond_lsgan(args):
    return cond_lsgan_cli.main, "cond-lsgan", args


EVALUATE_GENERATOR = ["evaluate", "generator", "--device", "cpu"]
AUGMENT = ["evaluate", "augment", "--steps", "1", "--device", "cpu"]
CASES = [
    ("preview", "a.h5", _data_tools(lambda i, o, s: ["preview", i, "--out", o])),
    ("merge", "a.h5", _data_tools(lambda i, o, s: ["merge", s["a.h5"], i, "--out", o])),
    ("split-train", "a.h5", _data_tools(lambda i, o, s: ["split", i, "--test-fraction", "0.5", "--train", o, "--test", "t.h5"])),
    ("split-test", "a.h5", _data_tools(lambda i, o, s: ["split", i, "--test-fraction", "0.5", "--train", "t.h5", "--test", o])),
    ("gnt", "x.gnt", _data_tools(lambda i, o, s: ["gnt", i, "--charset", "digits", "--size", "28", "--out", o])),
    ("gnt-folder", "x.gnt", _data_tools(lambda i, o, s: ["gnt", Path(i).parent, "--charset", "digits", "--size", "28", "--out", o])),
    ("mnist", IDX, _data_tools(lambda i, o, s: ["mnist", "--idx-dir", Path(i).parent, "--split", "test", "--size", "28", "--out", o])),
    ("charset-text", "chars.txt", _data_tools(lambda i, o, s: ["charset", "--text", i, "--out", o])),
    ("charset-file", "chars.txt", _data_tools(lambda i, o, s: ["charset", i, "--out", o])),
    ("render-font", "f.otf", _data_tools(lambda i, o, s: ["render", "--charset", "digits", "--limit", "2", "--font", i,
                                                          "--workers", "1", "--out", o])),
    ("render-charset", "chars.txt", _data_tools(lambda i, o, s: ["render", "--charset", i, "--font", s["f.otf"],
                                                                 "--workers", "1", "--out", o])),
    ("train", "a.h5", _cond_lsgan(lambda i, o, s: ["train", "--config", shipped_config("demo.toml"), "--data", i, "--out", o,
                                                   *TINY_RUN, "train.steps=1"])),
    ("sample", "ck.pt", _cond_lsgan(lambda i, o, s: ["sample", "--checkpoint", i, "--n", "2", "--out", o, "--device", "cpu"])),
    ("generate", "ck.pt", _cond_lsgan(lambda i, o, s: ["generate", "--checkpoint", i, "--all", "--per-class", "1", "--out", o,
                                                       "--device", "cpu"])),
    ("generate-png", "ck.pt", _cond_lsgan(lambda i, o, s: ["generate", "--checkpoint", i, "--all", "--per-class", "1",
                                                           "--format", "png", "--out", o, "--device", "cpu"])),
    ("train-judge", "a.h5", _cond_lsgan(lambda i, o, s: ["evaluate", "train-judge", "--data", i, "--out", o, "--steps", "1",
                                                         "--device", "cpu"])),
    ("generator-checkpoint", "ck.pt", _cond_lsgan(lambda i, o, s: [*EVALUATE_GENERATOR, "--checkpoint", i, "--judge", s["judge.pt"],
                                                                   "--data", s["a.h5"], "--out", o])),
    ("generator-judge", "judge.pt", _cond_lsgan(lambda i, o, s: [*EVALUATE_GENERATOR, "--checkpoint", s["ck.pt"], "--judge", i,
                                                                 "--data", s["a.h5"], "--out", o])),
    ("generator-data", "a.h5", _cond_lsgan(lambda i, o, s: [*EVALUATE_GENERATOR, "--checkpoint", s["ck.pt"],
                                                            "--judge", s["judge.pt"], "--data", i, "--out", o])),
    ("augment-real", "a.h5", _cond_lsgan(lambda i, o, s: [*AUGMENT, "--real", i, "--generated", s["a.h5"], "--test", s["a.h5"],
                                                          "--out", o])),
    ("augment-generated", "a.h5", _cond_lsgan(lambda i, o, s: [*AUGMENT, "--real", s["a.h5"], "--generated", i,
                                                               "--test", s["a.h5"], "--out", o])),
    ("augment-test", "a.h5", _cond_lsgan(lambda i, o, s: [*AUGMENT, "--real", s["a.h5"], "--generated", s["a.h5"], "--test", i,
                                                          "--out", o])),
    ("mog", "mog.toml", _cond_lsgan(lambda i, o, s: ["experiment", "mog", "--loss", "lsgan", "--seeds", "0", "--config", i,
                                                     "--out", o, "train.steps=1"])),
]


def _spell(spelling: str, name: str) -> tuple[str, str]:
    """(input, output) as given on the command line, run from the folder `dir` holding `name`."""
    if spelling == "same":
        return name, name
    if spelling == "dotted":
        return f"./{name}", f"../dir/{name}"
    link = f"{name}-{spelling}"  # not *.gnt: `gnt FOLDER` would read it as one more input
    (os.symlink if spelling == "symlink" else os.link)(name, link)
    return name, link


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run(main, argv, capsys) -> SimpleNamespace:
    code = main([str(arg) for arg in argv])
    return SimpleNamespace(returncode=code, stderr=capsys.readouterr().err)


@pytest.mark.parametrize("spelling", ["same", "dotted", "symlink", "hardlink"])
@pytest.mark.parametrize("name, command", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_an_output_that_is_an_input_is_refused(tmp_path, monkeypatch, capsys, sources, spelling, name, command):
    main, prog, make_args = command
    folder = tmp_path / "dir"
    folder.mkdir()
    for copied in [name, *COMPANIONS.get(name, [])]:
        shutil.copy(sources[copied], folder / copied)
    monkeypatch.chdir(folder)
    given_input, given_output = _spell(spelling, name)
    before = _sha256(folder / name)
    listing = sorted(os.listdir(folder))
    result = _run(main, make_args(given_input, given_output, sources), capsys)
    assert_one_line_error(result, prog, f" {Path(given_output)} is the input ", f" {Path(given_input)}; ",
                          "writing it would replace the input; choose another --")
    assert _sha256(folder / name) == before
    assert sorted(os.listdir(folder)) == listing  # refused before anything was written


# Files a command writes beside or inside the output it is given: each is checked too.
@pytest.mark.parametrize("input_name, make_args, written", [
    ("run/log.txt", lambda s: ["train", "--config", shipped_config("demo.toml"), "--data", "run/log.txt", "--out", "run"],
     "--out run writes run/log.txt, which is the input --data run/log.txt"),
    ("run/config.json", lambda s: ["train", "--config", shipped_config("demo.toml"), "--data", "run/config.json", "--out", "run"],
     "--out run writes run/config.json, which is the input --data run/config.json"),
    ("r.png", lambda s: [*EVALUATE_GENERATOR, "--checkpoint", s["ck.pt"], "--judge", "r.png", "--data", s["a.h5"],
                         "--out", "r.json"], "--out r.json writes r.png, which is the input --judge r.png"),
    ("m/summary.json", lambda s: ["experiment", "mog", "--loss", "bce", "--config", "m/summary.json", "--out", "m"],
     "--out m writes m/summary.json, which is the input --config m/summary.json"),
    ("m/lsgan/seed_3/generator.pt", lambda s: ["experiment", "mog", "--loss", "lsgan", "--seeds", "2-4",
                                               "--config", "m/lsgan/seed_3/generator.pt", "--out", "m"],
     "--out m writes m/lsgan/seed_3/generator.pt, which is the input --config m/lsgan/seed_3/generator.pt"),
], ids=["train-log", "train-config", "generator-picture", "mog-summary", "mog-seed-file"])
def test_a_file_written_from_the_output_is_checked_too(tmp_path, monkeypatch, capsys, sources, input_name, make_args, written):
    monkeypatch.chdir(tmp_path)
    Path(input_name).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(sources["a.h5"], input_name)
    before = _sha256(Path(input_name))
    result = _run(cond_lsgan_cli.main, make_args(sources), capsys)
    assert_one_line_error(result, "cond-lsgan", written, "choose another --out")
    assert _sha256(Path(input_name)) == before


def test_two_outputs_that_are_one_file_are_refused(tmp_path, monkeypatch, capsys, sources):
    """`split --train X --test X` (also through a link) is refused as before, before the store is read."""
    monkeypatch.chdir(tmp_path)
    os.symlink("t.h5", "link.h5")
    result = _run(data_tools_cli.main, ["split", sources["a.h5"], "--test-fraction", "0.5", "--train", "t.h5",
                                        "--test", "link.h5"], capsys)
    assert_one_line_error(result, "data-tools", "--train and --test are the same file (t.h5)")
    assert sorted(os.listdir(tmp_path)) == ["link.h5"]


def test_outputs_apart_from_inputs_pass(tmp_path):
    """Different files are fine, and so is an input inside an output folder that the command does not write."""
    (tmp_path / "a.h5").write_bytes(b"a")
    os.link(tmp_path / "a.h5", tmp_path / "hard.h5")
    check_outputs_apart({"store": [tmp_path / "a.h5", None], "--data": None}, {"--out": tmp_path / "b.h5", "--test": None})
    check_outputs_apart({"--data": tmp_path / "run" / "data.h5"}, {"--out": [tmp_path / "run", tmp_path / "run" / "log.txt"]})
    with pytest.raises(InputError, match=r"--out .*hard.h5 is the input store .*a.h5;"):
        check_outputs_apart({"store": tmp_path / "a.h5"}, {"--out": tmp_path / "hard.h5"})
