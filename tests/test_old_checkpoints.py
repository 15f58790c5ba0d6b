"""Checkpoints written before `train.fast_paths` existed (and with the fast layers built into
the models) still load, generate and resume: state dicts never depended on the layer forms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cond_lsgan.checkpoint import load_checkpoint, save_checkpoint
from cond_lsgan.sampling.loaded_generator import LoadedGenerator

# TINY_RUN trains in fp32; these runs keep the precision a user's run gets (bf16 where the CPU has it),
# which a loaded checkpoint then generates in
AUTO = "train.precision=auto"


def as_written_before_fast_paths(checkpoint, destination):
    """The same checkpoint with its config as the previous version wrote it: no train.fast_paths key."""
    state = load_checkpoint(checkpoint)
    del state["config"]["train"]["fast_paths"]
    save_checkpoint(state, destination)
    return destination


@pytest.mark.slow
def test_a_checkpoint_without_fast_paths_generates_and_resumes_as_before(tiny_run, tmp_path):
    reference = tiny_run(AUTO, "train.steps=4", out=tmp_path / "reference")  # 4 steps in one go
    first = tiny_run(AUTO, "train.steps=2", out=tmp_path / "resumed")
    old = as_written_before_fast_paths(first.checkpoint, tmp_path / "old.pt")

    new_loaded, old_loaded = LoadedGenerator(first.checkpoint, device="cpu"), LoadedGenerator(old, device="cpu")
    assert old_loaded.config.train.fast_paths  # the default for a run that did not say
    z, labels = new_loaded.generator.sample_z(4, torch.Generator().manual_seed(0)), torch.arange(4)
    # through render, in the precision a user gets (bf16 weights where the CPU has bf16)
    assert np.array_equal(old_loaded.render(z, labels), new_loaded.render(z, labels))

    as_written_before_fast_paths(first.checkpoint, first.checkpoint)  # the run folder as the previous version left it
    resumed = tiny_run(AUTO, "train.steps=4", out=tmp_path / "resumed", resume="auto")  # continues from it to step 4
    expected, got = load_checkpoint(reference.checkpoint), load_checkpoint(resumed.checkpoint)
    for key in ("generator", "generator_ema", "discriminator"):
        assert all(torch.equal(expected[key][name], got[key][name]) for name in expected[key])
