"""Data-parallel training: 2 CPU ranks (gloo) in real processes started by torchrun, against one process.

paper28 has no dropout, so 2 ranks on half batches each must compute what one process
computes on the whole batch, up to float summation order (see `assert_same_training`).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cond_lsgan.checkpoint import RUN_KEYS, list_checkpoints, load_checkpoint
from cond_lsgan.config import config_from_dict
from cond_lsgan.training.distributed import from_environment
from cond_lsgan.sampling.generate import GenerateRequest, generate_store
from cond_lsgan.models import build_models
from data_tools.errors import InputError
from data_tools.store import read_store
from helpers import DEMO, TINY_RUN, torchrun

# DEMO is paper28 (conditional, no dropout). Metrics and checkpoints every 2 steps, a grid every 4: what rank 0 writes.
EVERY = ["train.log_every=2", "train.sample_every=4", "train.checkpoint_every=2", "train.keep_checkpoints=3"]
STEPS = 4
LR = 2e-4  # the demo's learning rate, for G and D


@pytest.fixture(scope="module")
def runs(digits28, tiny_run, tmp_path_factory):
    """The same 4 steps on 2 ranks (torchrun) and in one process."""
    root = tmp_path_factory.mktemp("runs")
    ddp = torchrun("train", "--config", DEMO, "--data", digits28, "--out", root / "ddp", *TINY_RUN, *EVERY, f"train.steps={STEPS}")
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    tiny_run(*EVERY, f"train.steps={STEPS}", out=root / "single")
    return root, ddp


def zero_gradient_parameters(config) -> dict[str, set[str]]:
    """Parameters whose gradient is exactly 0, found in float64: what a train-mode BatchNorm subtracts out.

    In paper28 that is the bias of each layer feeding a BatchNorm (and G's label bias,
    which feeds only such a layer). What a float32 backward pass computes for them is
    rounding noise, and Adam divides by the noise's own size: steps of about lr with a
    random sign, in one process as in two. They change no output in training, only their
    own values and the running means after them, so those are held to `adam_reach`.
    """
    torch.manual_seed(0)
    generator, discriminator = build_models(config.model, 10, 28)
    generator.double(), discriminator.double()
    labels = torch.arange(8)
    scores = discriminator(generator(generator.sample_z(8).double(), labels), labels)
    (scores * torch.randn_like(scores)).sum().backward()
    found = {}
    for key, module in (("generator", generator), ("discriminator", discriminator)):
        largest = max(p.grad.abs().max() for p in module.parameters())
        found[key] = {name for name, p in module.named_parameters() if p.grad.abs().max() <= 1e-12 * largest}
    found["generator_ema"] = found["generator"]
    return found


def adam_reach(steps: int, beta1: float = 0.5, beta2: float = 0.999) -> float:
    """The furthest Adam can move one weight in `steps` steps, in units of lr, whatever the gradients.

    Step t moves it by lr * |m_hat| / sqrt(v_hat), and by Cauchy-Schwarz over the past
    gradients |m_hat| / sqrt(v_hat) <= (1 - b1) / (1 - b1^t) * sqrt((1 - b2^t) / (1 - b2))
    * sqrt(sum_k<t (b1^2 / b2)^k): 1 for the first step, 1.05, 1.13, 1.23, ... after it.
    """
    ratio = beta1**2 / beta2
    return sum((1 - beta1) / (1 - beta1**t) * math.sqrt((1 - beta2**t) / (1 - beta2)) * math.sqrt(sum(ratio**k for k in range(t)))
               for t in range(1, steps + 1))


def assert_same_training(a: dict, b: dict, steps: int) -> dict[str, float]:
    """Two runs' weights, EMA and BatchNorm statistics agree but for Adam's response to rounding; the largest differences.

    A real difference of method (another batch or noise slice, per-rank BatchNorm
    statistics, summed instead of averaged gradients) moves most weights by about lr a
    step; rounding moves them by a small fraction of lr (Adam normalises each gradient,
    so small gradients' rounding shows). So: weights within lr / 20, and the outputs of
    G and D (in training mode) on the same input within float32 rounding.
    """
    config = config_from_dict(a["config"])
    loose = zero_gradient_parameters(config)
    assert loose["generator"] == {"embed.bias", "project.bias", "up1.bias"}
    assert loose["discriminator"] == {"conv2.conv.bias", "fc1.bias"}
    worst = {"weights": 0.0, "zero-gradient biases and running means": 0.0, "outputs (relative)": 0.0}
    for key in ("generator", "generator_ema", "discriminator"):
        for name, tensor in a[key].items():
            difference = (tensor.double() - b[key][name].double()).abs().max().item()
            if name in loose[key] or name.endswith("running_mean"):
                assert difference <= 2 * LR * adam_reach(steps), f"{key}.{name}: {difference}"  # each run moves them so far
                worst["zero-gradient biases and running means"] = max(worst["zero-gradient biases and running means"], difference)
            else:
                assert difference <= LR / 20, f"{key}.{name}: {difference}"
                worst["weights"] = max(worst["weights"], difference)
    outputs = []
    for state in (a, b):
        generator, discriminator = build_models(config.model, 10, 28)
        generator.load_state_dict(state["generator"]), discriminator.load_state_dict(state["discriminator"])
        z, labels = generator.sample_z(16, torch.Generator().manual_seed(3)), torch.arange(16) % 10
        with torch.no_grad():
            fake = generator(z, labels)
            outputs.append((fake, discriminator(fake, labels)))
    for ours, theirs in zip(*outputs):
        error = ((ours - theirs).abs().max() / theirs.abs().max()).item()
        assert error <= 1e-4, error
        worst["outputs (relative)"] = max(worst["outputs (relative)"], error)
    return worst


@pytest.mark.slow  # torchrun
def test_two_ranks_compute_what_one_process_computes(runs):
    root, ddp = runs
    a = load_checkpoint(list_checkpoints(root / "ddp")[-1], require=RUN_KEYS)
    b = load_checkpoint(list_checkpoints(root / "single")[-1], require=RUN_KEYS)
    assert a["step"] == b["step"] == STEPS
    worst = assert_same_training(a, b, STEPS)
    print(f"largest differences, 2 ranks vs one process after {STEPS} steps: {worst}")
    assert torch.equal(a["rng"]["noise"], b["rng"]["noise"])  # every rank drew the global batch's noise
    # Training really moved the weights (far more than the differences).
    first = load_checkpoint(list_checkpoints(root / "ddp")[0])
    assert (a["generator"]["up2.weight"] - first["generator"]["up2.weight"]).abs().max() > 100 * worst["weights"]


@pytest.mark.slow  # torchrun
def test_without_sync_batchnorm_the_ranks_normalise_their_own_halves(runs, digits28, tmp_path):
    """train.sync_batchnorm=false: per-rank batch statistics, another computation, and the comparison above sees it."""
    root, _ = runs
    ddp = torchrun("train", "--config", DEMO, "--data", digits28, "--out", tmp_path / "run", *TINY_RUN, *EVERY, f"train.steps={STEPS}",
                   "train.sync_batchnorm=false")
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert "SyncBatchNorm" not in (tmp_path / "run" / "log.txt").read_text()
    a = load_checkpoint(list_checkpoints(tmp_path / "run")[-1])
    with pytest.raises(AssertionError, match=r"generator\..*: 0\.00"):  # differences of about lr, not of rounding
        assert_same_training(a, load_checkpoint(list_checkpoints(root / "single")[-1]), STEPS)


@pytest.mark.slow  # torchrun
def test_rank_0_alone_writes_the_run_folder_and_logs_mean_losses(runs):
    import json

    root, ddp = runs
    log = (root / "ddp" / "log.txt").read_text().splitlines()
    assert len([line for line in log if line.startswith("starting at step 0")]) == 1
    assert "2 ranks (gloo, cpu), 4 images each a step, SyncBatchNorm" in log[0]
    assert [p.name for p in list_checkpoints(root / "ddp")] == ["step_0000002.pt", "step_0000004.pt"]
    assert sorted(p.name for p in (root / "ddp" / "samples").iterdir()) == ["step_0000004.png"]
    ddp_metrics = [json.loads(line) for line in (root / "ddp" / "metrics.jsonl").read_text().splitlines()]
    single_metrics = [json.loads(line) for line in (root / "single" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in ddp_metrics] == [r["step"] for r in single_metrics] == [2, 4]
    for ours, theirs in zip(ddp_metrics, single_metrics):  # means over the ranks are the global batch's losses
        assert ours["d_loss"] == pytest.approx(theirs["d_loss"], abs=1e-4)
        assert ours["g_loss"] == pytest.approx(theirs["g_loss"], abs=1e-4)
    assert ddp.stdout.count("trained to step 4") == 1  # rank 0 reports


@pytest.mark.slow  # torchrun
def test_a_two_rank_checkpoint_resumes_in_one_process_and_generates(runs, tiny_run, tmp_path):
    root, _ = runs
    resumed = tiny_run(*EVERY, f"train.steps={STEPS + 2}", out=root / "ddp", resume="auto")
    straight = tiny_run(*EVERY, f"train.steps={STEPS + 2}", out=root / "single", resume="auto")
    assert resumed.step == straight.step == STEPS + 2
    a, b = load_checkpoint(resumed.checkpoint), load_checkpoint(straight.checkpoint)
    assert_same_training(a, b, STEPS + 2)
    assert f"resuming from {root / 'ddp' / 'checkpoints' / 'step_0000004.pt'} at step 4 of 6 on cpu" in (root / "ddp" / "log.txt").read_text()
    count = generate_store(GenerateRequest(list_checkpoints(root / "ddp")[0], per_class=2, all_classes=True, device="cpu"), tmp_path / "gen.h5")
    assert count == 20 and read_store(tmp_path / "gen.h5").images.dtype == np.uint8


@pytest.mark.slow  # torchrun
def test_torchrun_restarts_a_killed_rank_and_resume_auto_continues(digits28, tmp_path):
    """A rank killed with SIGKILL mid-run: torchrun --max-restarts restarts both, and --resume auto picks up the checkpoint.

    The kill comes from the run itself (a worker's own `os.kill`) so it lands after a
    checkpoint, without the test racing the processes.
    """
    hook = tmp_path / "sitecustomize.py"
    hook.write_text(
        "import os, signal, cond_lsgan.checkpoint as c\n"
        "save = c.save_checkpoint\n"
        "def save_then_die(state, path):\n"
        "    save(state, path)\n"
        "    if state['step'] == 2 and os.environ.get('TORCHELASTIC_RESTART_COUNT') == '0':\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "c.save_checkpoint = save_then_die\n")
    result = torchrun("train", "--config", DEMO, "--data", digits28, "--out", tmp_path / "run", "--resume", "auto",
                      *TINY_RUN, *EVERY, "train.steps=4", launcher=("--max-restarts=1", "--monitor-interval=0.2"), path=(str(tmp_path),))
    assert result.returncode == 0, result.stderr[-3000:]
    log = (tmp_path / "run" / "log.txt").read_text()
    assert "starting at step 0" in log and f"resuming from {tmp_path / 'run' / 'checkpoints' / 'step_0000002.pt'} at step 2" in log
    assert load_checkpoint(list_checkpoints(tmp_path / "run")[-1], require=RUN_KEYS)["step"] == 4


@pytest.mark.parametrize("environment, message", [
    ({"RANK": "0", "WORLD_SIZE": "3", "LOCAL_RANK": "0"}, "train.batch_size=8 is the global batch and must divide among the 3 ranks"),
    ({"RANK": "0"}, "RANK set but not WORLD_SIZE, LOCAL_RANK: start distributed training with torchrun"),
    ({"RANK": "a", "WORLD_SIZE": "2", "LOCAL_RANK": "0"}, "must be whole numbers"),
    ({"RANK": "2", "WORLD_SIZE": "2", "LOCAL_RANK": "0"}, "RANK=2, LOCAL_RANK=0 do not fit WORLD_SIZE=2"),
])
def test_bad_distributed_settings_are_one_line_errors(tiny_run, tmp_path, monkeypatch, environment, message):
    """Checked before the process group is joined, so no rank waits for others that will not come."""
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        tiny_run("train.steps=1", out=tmp_path / "run")
    assert "\n" not in str(error.value)
    assert not (tmp_path / "run").exists()


def test_environment_without_torchrun_is_one_process():
    ranks = from_environment({})
    assert (ranks.rank, ranks.world, ranks.distributed, ranks.main) == (0, 1, False, True)
    ranks = from_environment({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"})
    assert (ranks.rank, ranks.world, ranks.local_rank, ranks.distributed, ranks.main) == (1, 2, 1, True, False)
