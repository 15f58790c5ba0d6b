"""`train.tensorboard = true`: tiny real runs write their metrics and grids as TensorBoard events,
read back with TensorBoard's own event reader; a resumed run hides what it logs again; rank 0
alone writes under torchrun; without the package, one line and exit code 2."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cond_lsgan.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint
from cond_lsgan.config import config_from_dict
from cond_lsgan.report.run_report import write_run_report
from cond_lsgan.training.resume import resolve_run_config
from cond_lsgan.training.tensorboard_log import GRID_TAG, SCALARS, TENSORBOARD_DIR
from cond_lsgan.training.loop import train
from helpers import DEMO, TINY_RUN, assert_one_line_error, run_module, torchrun

RUN = ["train.log_every=2", "train.sample_every=4", "train.checkpoint_every=4"]  # on TINY_RUN: metrics every 2 steps, grids every 4


def events(run_dir) -> EventAccumulator:
    """Every scalar and image event of the run, as TensorBoard itself reads them (nothing sampled away)."""
    accumulator = EventAccumulator(str(run_dir / TENSORBOARD_DIR), size_guidance={"scalars": 0, "images": 0})
    accumulator.Reload()
    return accumulator


def metrics(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def assert_scalars_are_the_metrics(board: EventAccumulator, records: list[dict]) -> None:
    """Each metrics.jsonl number is an event of its tag at its step (float32 in the event file)."""
    assert set(board.Tags()["scalars"]) == set(SCALARS.values())
    for key, tag in SCALARS.items():
        got = board.Scalars(tag)
        assert [event.step for event in got] == [record["step"] for record in records], tag
        np.testing.assert_allclose([event.value for event in got], [record[key] for record in records], rtol=1e-6, err_msg=tag)


def test_a_run_writes_its_metrics_and_grids_as_events(tiny_run, tmp_path):
    run = tmp_path / "run"
    tiny_run(*RUN, "train.steps=12", "train.tensorboard=true", out=run)
    board = events(run)
    records = metrics(run)
    assert [record["step"] for record in records] == [2, 4, 6, 8, 10, 12]
    assert_scalars_are_the_metrics(board, records)
    # The grids: the very pictures saved in samples/, pixel for pixel.
    grids = board.Images(GRID_TAG)
    assert [event.step for event in grids] == [4, 8, 12]
    for event in grids:
        saved = Image.open(run / "samples" / f"step_{event.step:07d}.png").convert("RGB")
        logged = Image.open(io.BytesIO(event.encoded_image_string))
        assert (event.width, event.height) == saved.size
        np.testing.assert_array_equal(np.asarray(logged.convert("RGB")), np.asarray(saved))
    # Off (the default): no events.
    tiny_run(*RUN, "train.steps=2", out=tmp_path / "quiet")
    assert not (tmp_path / "quiet" / TENSORBOARD_DIR).exists()


def test_a_resumed_run_hides_the_steps_it_logs_again(tiny_run, tmp_path):
    """Killed after logging step 8 but before its checkpoint: the resumed run logs 6 and 8 again; TensorBoard shows them once."""
    run = tmp_path / "run"
    tiny_run(*RUN, "train.steps=8", "train.tensorboard=true", out=run)
    checkpoint_path(run, 8).unlink()  # what a kill between the metrics line and the checkpoint of step 8 leaves
    first = {record["step"]: record for record in metrics(run)}
    tiny_run(*RUN, "train.steps=10", "train.tensorboard=true", out=run, resume="auto")
    records = metrics(run)
    assert [record["step"] for record in records] == [2, 4, 6, 8, 6, 8, 10]  # the file keeps both; the events do not
    latest = {record["step"]: record for record in records}
    assert latest[6]["time"] != first[6]["time"]
    board = events(run)
    assert_scalars_are_the_metrics(board, [latest[step] for step in sorted(latest)])
    assert [event.step for event in board.Images(GRID_TAG)] == [4, 8, 10]


def test_a_run_saved_before_the_key_existed_resumes_and_can_turn_events_on(digits28, tiny_run, tmp_path):
    run = tmp_path / "run"
    first = tiny_run(*RUN, "train.steps=4", out=run)
    state = load_checkpoint(first.checkpoint)  # as the previous version wrote them: no train.tensorboard
    del state["config"]["train"]["tensorboard"]
    save_checkpoint(state, first.checkpoint)
    saved = json.loads((run / "config.json").read_text())
    del saved["train"]["tensorboard"]
    (run / "config.json").write_text(json.dumps(saved))
    assert config_from_dict(saved).train.tensorboard is False
    config = resolve_run_config(None, run, "auto", ["train.steps=6", "train.tensorboard=true"])
    assert train(config, digits28, run, resume="auto").step == 6
    assert [event.step for event in events(run).Scalars("loss/d")] == [6]


@pytest.mark.slow  # a CLI process
def test_without_tensorboard_installed_it_is_one_line_and_no_run_folder(few_digits28, tmp_path):
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['tensorboard'] = None  # as if it were not installed\n")
    result = run_module("cond_lsgan", "train", "--config", DEMO, "--data", few_digits28, "--out", tmp_path / "run", *TINY_RUN,
                        "train.steps=2", "train.tensorboard=true", extra_path=hide)
    assert_one_line_error(result, "cond-lsgan", "train.tensorboard = true needs the tensorboard package",
                          "pip install 'cond-lsgan[tensorboard]'")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow  # torchrun
def test_under_torchrun_rank_0_alone_writes_events(digits28, tmp_path):
    run = tmp_path / "run"
    result = torchrun("train", "--config", DEMO, "--data", digits28, "--out", run, *TINY_RUN, *RUN,
                      "train.sample_every=2", "train.steps=4", "train.tensorboard=true")
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(list((run / TENSORBOARD_DIR).iterdir())) == 1  # one event file: rank 1 wrote none
    board = events(run)
    assert_scalars_are_the_metrics(board, metrics(run))
    assert [event.step for event in board.Images(GRID_TAG)] == [2, 4]
    page = write_run_report(run, tmp_path / "report.html").read_text()  # the report of a DDP run
    assert page.count('<figure class="grid">') == 2 and page.count('<path class="series"') == 3
