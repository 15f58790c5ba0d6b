"""No command but train writes into a run folder's own files; class texts of several characters; PNG folder modes.

The failures first reproduced: `report --out run/checkpoints/step_0000002.pt` turned the
newest checkpoint into HTML, `--out run/.lock` during a live run swapped the lock's file
(test_resume_safety.py runs that case with two trainers); `generate --format png` made its
folder 0700; `sample` could not choose a class whose text is several characters.
"""

from __future__ import annotations

import stat
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cond_lsgan.cli import main as cond_lsgan_main
from cond_lsgan.selection import select_classes
from cond_lsgan.training.run_outputs import check_outside_run_folders, run_part
from data_tools.errors import InputError
from data_tools.store import ClassTable, StoreWriter
from helpers import ENV, assert_mentions, assert_one_line_error, file_digests, run_cond_lsgan

CLASSES = ("ab", "Greek/character01", "c")  # two class texts of several characters


@pytest.fixture(scope="module")
def trained(tiny_run, tmp_path_factory):
    """A 2-step paper28 run on a store whose class texts have several characters: (store, run folder)."""
    root = tmp_path_factory.mktemp("run_outputs")
    store = root / "several.h5"
    rng = np.random.default_rng(0)
    with StoreWriter(store, 28, ClassTable(list(CLASSES)), ["font A"], {"test": True}) as writer:
        writer.append(rng.integers(0, 256, (12, 28, 28), dtype=np.uint8), np.arange(12) % 3, np.zeros(12, dtype=int))
    tiny_run("train.steps=2", data=store, out=root / "run")
    return store, root / "run"


def test_the_parts_of_a_run_folder_that_train_writes_are_found_by_every_spelling(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    (tmp_path / "link").symlink_to(run / "samples", target_is_directory=True)
    refused = {run: "the run folder itself", run / ".lock": "its .lock", run / "config.json": "its config.json",
               run / "log.txt": "its log.txt", run / "metrics.jsonl": "its metrics.jsonl",
               run / "checkpoints" / "step_0000020.pt": "its checkpoints/", run / "samples" / "a" / "b.png": "its samples/",
               run / "tensorboard" / "events": "its tensorboard/", tmp_path / "link" / "x.png": "its samples/",
               run / "checkpoints" / ".." / "log.txt": "its log.txt"}
    for path, part in refused.items():
        assert run_part(path) == (run.resolve(), part), path
    for path in (run / "report.html", run / "mine" / "config.json", tmp_path / "config.json", tmp_path / "samples" / "x.png"):
        assert run_part(path) is None, path
    with pytest.raises(InputError) as refused:
        check_outside_run_folders({"--html": None, "--out": [run / "checkpoints" / "step_0000020.pt"]})
    assert_mentions(str(refused.value), "--out ", "step_0000020.pt", "would write into the run folder", f"{run} (its checkpoints/)")


def test_a_lone_lock_of_another_program_does_not_make_a_run_folder(tmp_path):
    (tmp_path / ".lock").write_text("")
    assert run_part(tmp_path / "log.txt") is None and run_part(tmp_path / "samples" / "x.png") is None


def test_no_command_writes_a_run_folders_own_files(trained, tmp_path, capsys):
    store, run = trained
    newest = run / "checkpoints" / "step_0000002.pt"
    grid = sorted((run / "samples").glob("*.png"))[-1]
    before = file_digests(run)
    cases = [
        ("report", run, "--out", grid),
        ("report", run, "--out", newest),
        ("report", run, "--out", run / ".lock"),
        ("report", run, "--out", run / "metrics.jsonl"),
        ("sample", "--checkpoint", newest, "--out", grid),
        ("generate", "--checkpoint", newest, "--all", "--per-class", "1", "--out", run / "checkpoints" / "g.h5"),
        ("generate", "--checkpoint", newest, "--all", "--per-class", "1", "--format", "png", "--out", run / "tensorboard" / "g"),
        ("styles", "--checkpoint", newest, "--data", store, "--out", run / "config.json"),
        ("evaluate", "generator", "--checkpoint", newest, "--judge", tmp_path / "j.pt", "--data", store,
         "--out", run / "log.txt"),
    ]
    for arguments in cases:  # in this process: each is refused before any work
        code = cond_lsgan_main([str(argument) for argument in arguments])
        result = subprocess.CompletedProcess(arguments, code, "", capsys.readouterr().err)
        assert_one_line_error(result, "cond-lsgan", "would write into the run folder", "choose a path outside")
    assert file_digests(run) == before
    page = run / "report.html"  # beside the run's files is fine
    result = run_cond_lsgan("report", run, "--out", page)
    assert result.returncode == 0, result.stderr
    assert "<html" in page.read_text(encoding="utf-8").lower()
    page.unlink()
    assert file_digests(run) == before


@pytest.mark.slow  # starts the CLI
def test_classes_of_several_characters_are_chosen_whole_or_by_index(trained, tmp_path):
    _, run = trained
    newest = run / "checkpoints" / "step_0000002.pt"
    by_text, by_index = tmp_path / "text.png", tmp_path / "index.png"
    for arguments, out in ((("--chars", "Greek/character01,c"), by_text), (("--classes", "1-2"), by_index)):
        result = run_cond_lsgan("sample", "--checkpoint", newest, "--n", "2", *arguments, "--out", out)
        assert result.returncode == 0, result.stderr
    assert np.array_equal(np.asarray(Image.open(by_text)), np.asarray(Image.open(by_index)))  # the same two rows
    missing = run_cond_lsgan("sample", "--checkpoint", newest, "--chars", "Greek/character99", "--out", tmp_path / "x.png")
    # every character named as given, none merged away (the old message printed "Greek/charto9")
    assert_one_line_error(missing, "cond-lsgan", "'G', 'r', 'e', 'e', 'k', '/'", "'9', '9'", "chosen whole (--chars a,b/c)")
    assert not (tmp_path / "x.png").exists()


def test_select_classes_reads_pieces_whole_then_by_character():
    table = ClassTable(list(CLASSES))
    assert select_classes(table, chars="c,ab Greek/character01") == [2, 0, 1]
    assert select_classes(table, chars="cc") == [2, 2]
    with pytest.raises(InputError, match=r"not in the model's class table \(3 classes\): 'a', 'b', 'a'"):
        select_classes(table, chars="aba")  # 'aba' is no class; its characters are tried one by one


@pytest.mark.slow  # starts the CLI
def test_a_png_folder_gets_the_users_umask_not_0700(trained, tmp_path):
    _, run = trained
    out = tmp_path / "pngs"
    result = subprocess.run([sys.executable, "-c", "import os, sys\nos.umask(0o022)\nfrom cond_lsgan.cli import main\n"
                             "sys.exit(main(sys.argv[1:]))", "generate", "--checkpoint", str(run / "checkpoints" / "step_0000002.pt"),
                             "--all", "--per-class", "1", "--format", "png", "--out", str(out)],
                            capture_output=True, text=True, env=ENV, timeout=120)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert sorted(path.name for path in out.iterdir()) == ["0_ab", "1_Greek_character01", "2_c", "labels.csv"]
