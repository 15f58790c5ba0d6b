"""The fast paths compute what the plain ones do: layers, precision, memory layout, frozen D, resume, generation."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cond_lsgan import runtime
from cond_lsgan.checkpoint import load_checkpoint
from cond_lsgan.config import Config, ModelConfig, apply_overrides
from cond_lsgan.sampling.loaded_generator import LoadedGenerator
from cond_lsgan.models import build_models
from cond_lsgan.fast import fold_batchnorm, use_fast_paths
from cond_lsgan.fast.fold import FoldConv2d, FoldConvTranspose2d
from cond_lsgan.fast.onednn import OneDNNLinear, onednn_available
from cond_lsgan.fast.upsample_conv import UpsampleConv2d
from cond_lsgan.runtime import make_adam, resolve_precision
from cond_lsgan.training.step import TrainingStep
from cond_lsgan.training.loop import train
from data_tools.errors import InputError
from helpers import TINY_PAPER28, TINY_TRAIN, assert_mentions, assert_one_line_error, run_cond_lsgan

CPU = torch.device("cpu")
# seed32 (full width, 32x32) in bf16 takes about a second a step where the CPU lacks bf16
# instructions and torch emulates them; tiny paper28 runs the same checks in the fast suite.
SLOW_ON_THE_CPU = pytest.mark.slow


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual - expected).abs().max() / expected.abs().max()).item()


def config(*overrides: str) -> Config:
    return apply_overrides(Config(), list(overrides))


def assert_same_function(fast: nn.Module, plain: nn.Module, x: torch.Tensor) -> None:
    """fast (fp32) against plain (computed in fp64 as the truth): outputs and the gradients of input and parameters.

    Each must be within 1e-5 relative error of the truth, as the plain form in fp32 is.
    A gradient that is zero in exact arithmetic (a conv bias ahead of a train-mode
    BatchNorm) holds only fp32 rounding noise, so it is measured against the largest
    gradient instead of itself.
    """
    truth = copy.deepcopy(plain).double()
    x64 = x.detach().double().requires_grad_()
    expected = truth(x64)
    upstream = torch.randn_like(expected)
    expected_grads = torch.autograd.grad(expected, (x64, *truth.parameters()), upstream)
    for module in (fast, plain):
        x32 = x.detach().clone().requires_grad_()
        out = module(x32)
        assert out.shape == expected.shape and out.dtype == torch.float32
        assert relative_error(out.double(), expected) <= 1e-5
        grads = torch.autograd.grad(out, (x32, *module.parameters()), upstream.float())
        names = ["input", *(name for name, _ in module.named_parameters())]
        largest = max(g.abs().max() for g in expected_grads)
        for name, got, want in zip(names, grads, expected_grads, strict=True):
            assert got.shape == want.shape
            scale = want.abs().max() if want.abs().max() > 1e-9 * largest else largest
            assert (got.double() - want).abs().max() / scale <= 1e-5, name


@pytest.mark.parametrize("batch, c_in, c_out, height, width", [(3, 5, 4, 7, 9), (2, 3, 6, 1, 1), (4, 16, 8, 8, 8), (2, 128, 64, 5, 3)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_upsample_conv_equals_upsample_then_conv(batch, c_in, c_out, height, width, channels_last):
    """The swapped-in transposed form against nearest 2x upsampling then the 3x3 conv, odd and one-pixel sizes included."""
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(c_in, c_out, 3, stride=1, padding=1))
    fast = use_fast_paths(copy.deepcopy(plain), CPU)
    assert [type(m) for m in fast] == [nn.Identity, UpsampleConv2d]
    layout = torch.channels_last if channels_last else torch.contiguous_format
    fast.to(memory_format=layout)
    x = torch.randn(batch, c_in, height, width).contiguous(memory_format=layout)
    assert fast(x).shape == (batch, c_out, 2 * height, 2 * width)
    assert_same_function(fast, plain, x)


@pytest.mark.parametrize("c_in, c_out, size, kernel, stride, padding, extra", [
    (128, 1, 14, 5, 2, 2, 1),  # paper28's last layer
    (5, 3, 7, 5, 2, 2, 1), (4, 2, 6, 3, 2, 1, 0), (4, 2, 5, 4, 3, 1, 2), (3, 2, 1, 5, 2, 2, 1)])
def test_fold_transposed_conv_equals_conv_transpose(c_in, c_out, size, kernel, stride, padding, extra):
    torch.manual_seed(0)
    fast = FoldConvTranspose2d(c_in, c_out, kernel, stride, padding, extra)
    plain = nn.ConvTranspose2d(c_in, c_out, kernel, stride, padding, extra)
    plain.load_state_dict(fast.state_dict())
    assert_same_function(fast, plain, torch.randn(3, c_in, size, size + 2))


@pytest.mark.parametrize("c_in, c_out, size, kernel, padding", [
    (64, 1, 32, 3, 1),  # seed32's last layer
    (5, 3, 7, 3, 0), (4, 2, 6, 5, 2), (4, 2, 5, 5, 4), (3, 2, 1, 3, 1)])
def test_fold_conv_equals_conv(c_in, c_out, size, kernel, padding):
    torch.manual_seed(0)
    fast = FoldConv2d(c_in, c_out, kernel, padding=padding)
    plain = nn.Conv2d(c_in, c_out, kernel, padding=padding)
    plain.load_state_dict(fast.state_dict())
    assert_same_function(fast, plain, torch.randn(3, c_in, size, size + 1))


@pytest.mark.parametrize("batch, c_in, c_out, bias", [
    (4, 15936 // 8, 1024 // 8, True),  # paper28's D FC layer, narrowed
    (3, 40, 1, True), (1, 7, 5, False), (5, 1, 9, True)])
def test_onednn_linear_equals_linear(batch, c_in, c_out, bias):
    torch.manual_seed(0)
    fast, plain = OneDNNLinear(c_in, c_out, bias=bias), nn.Linear(c_in, c_out, bias=bias)
    plain.load_state_dict(fast.state_dict())
    x = torch.randn(batch, c_in)
    if onednn_available():  # the oneDNN path is the one taken, not the fallback
        assert "_LinearFunction" in type(fast(x.requires_grad_()).grad_fn).__name__
    assert_same_function(fast, plain, x)


def test_onednn_linear_falls_back_under_autocast_and_for_an_empty_batch():
    torch.manual_seed(0)
    layer, x = OneDNNLinear(32, 16), torch.randn(4, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, reference = layer(x), F.linear(x, layer.weight, layer.bias)
    assert out.dtype == torch.bfloat16 and torch.equal(out, reference)  # autocast's own bf16 product
    empty = torch.zeros(0, 32, requires_grad=True)  # an empty batch: nn.Linear's result, gradients included
    layer(empty).sum().backward()
    assert layer(empty).shape == (0, 16) and torch.equal(layer.weight.grad, torch.zeros(16, 32))


def test_onednn_linear_refuses_double_backward():
    """Its backward products are not differentiable themselves: a second derivative is an error, never a wrong number."""
    layer, x = OneDNNLinear(8, 4), torch.randn(3, 8, requires_grad=True)
    (grad,) = torch.autograd.grad(layer(x).square().sum(), x, create_graph=True)
    if onednn_available():  # without oneDNN the layer is nn.Linear, whose second derivative is checked below
        with pytest.raises(RuntimeError, match="twice|once"):
            grad.sum().backward()
    plain = nn.Linear(8, 4)  # with fast paths off: d/dx of sum(2 (xW^T + b) W) is 2 W^T W summed over outputs, per row
    plain.load_state_dict(layer.state_dict())
    (grad,) = torch.autograd.grad(plain(x).square().sum(), x, create_graph=True)
    (second,) = torch.autograd.grad(grad.sum(), x)
    expected = 2 * (layer.weight.t() @ layer.weight).sum(1)
    assert torch.allclose(second, expected.expand_as(second), atol=1e-5)


def test_transposed_kernel_sums_the_taps_that_read_the_same_pixel():
    """Spot-check the derivation: a one-hot 3x3 kernel lands on the expected 4x4 taps."""
    conv = UpsampleConv2d(1, 1)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 1, 1] = 1.0  # the centre tap reads the pixel itself in every phase
    kernel = conv.transposed_kernel()[0, 0]
    assert kernel.tolist() == [[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 0, 2] = 1.0  # top-right tap
    assert conv.transposed_kernel()[0, 0].nonzero().tolist() == [[2, 0], [2, 1], [3, 0], [3, 1]]


@pytest.mark.parametrize("conditional", [False, True])
def test_seed32_fast_generator_equals_plain_with_the_same_state_dict(conditional):
    torch.manual_seed(0)
    plain, _ = build_models(ModelConfig(conditional=conditional, embed_dim=16), 10, 32)
    fast = use_fast_paths(copy.deepcopy(plain), CPU)
    swapped = [type(m) for m in fast.modules() if type(m) in (UpsampleConv2d, FoldConv2d)]
    assert swapped == [UpsampleConv2d, UpsampleConv2d, FoldConv2d]
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), fast.state_dict().values()))
    assert list(plain.state_dict()) == list(fast.state_dict())  # checkpoints interchangeable
    z, labels = torch.randn(6, 100), torch.arange(6)
    # Whole generators are compared in fp64: through LeakyReLU a gradient jumps at 0, and an
    # fp32 activation within rounding of 0 (seed 0 has one, |x| < 1e-6) may fall on either
    # side for any two summation orders. Each layer's fp32 gradients are checked above.
    fast64, plain64 = copy.deepcopy(fast).double(), copy.deepcopy(plain).double()
    for mode in ("train", "eval"):  # batch statistics, then running statistics
        for module in (fast, plain, fast64, plain64):
            module.train(mode == "train")
        assert relative_error(fast(z, labels).double(), copy.deepcopy(plain64)(z.double(), labels)) <= 1e-5
        outputs = []
        for module in (fast64, plain64):
            z64 = z.double().requires_grad_()
            out = module(z64, labels)
            outputs.append((out, *torch.autograd.grad(out.square().sum(), (z64, *module.parameters()))))
        largest = max(value.abs().max() for value in outputs[1])  # a conv bias ahead of a train-mode BatchNorm: gradient 0
        for got, want in zip(*outputs, strict=True):
            assert (got - want).abs().max() <= 1e-10 * largest


class WithLabels(nn.Module):
    """generator(z, labels) as a one-argument module, for assert_same_function."""

    def __init__(self, generator: nn.Module, labels: torch.Tensor) -> None:
        super().__init__()
        self.generator, self.labels = generator, labels

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z, self.labels)


def test_precision_choices(monkeypatch):
    for name in ("auto", "fp32", "bf16", "fp16"):
        assert config(f"train.precision={name}").train.precision == name
    with pytest.raises(InputError) as refused:
        config("train.precision=fp64")
    assert_mentions(str(refused.value), "train.precision", "'auto', 'fp32', 'bf16', 'fp16'", "'fp64'")
    assert resolve_precision("fp32", CPU) is None
    assert resolve_precision("bf16", CPU) == torch.bfloat16
    monkeypatch.setattr(runtime, "cpu_has_bf16", lambda: True)
    assert resolve_precision("auto", CPU) == torch.bfloat16
    monkeypatch.setattr(runtime, "cpu_has_bf16", lambda: False)
    assert resolve_precision("auto", CPU) is None  # emulated bf16 would be slower than fp32


def test_fp16_on_cpu_is_refused(digits32, tmp_path):
    with pytest.raises(InputError) as refused:
        resolve_precision("fp16", CPU)
    assert_mentions(str(refused.value), "'fp16' needs a CUDA device", "cpu", "'bf16'")
    with pytest.raises(InputError, match="needs a CUDA device"):
        train(config(*TINY_TRAIN, "train.steps=2", "train.precision=fp16"), digits32, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def run_steps(trainer: TrainingStep, steps: int, batch: int = 8, classes: int = 10, size: int = 32) -> list[torch.Tensor]:
    rng = torch.Generator().manual_seed(5)
    losses = []
    for index in range(steps):
        pixels = torch.randint(0, 256, (batch, size, size), dtype=torch.uint8, generator=rng)
        labels = torch.randint(0, classes, (batch,), generator=rng)
        losses.append(trainer.step(pixels, labels, index))
    return losses


@pytest.mark.parametrize("overrides, size", [pytest.param((), 32, marks=SLOW_ON_THE_CPU), (tuple(TINY_PAPER28), 28)])
def test_bf16_training_steps_give_finite_losses_and_keep_fp32_weights(overrides, size):
    trainer = TrainingStep(config("train.precision=bf16", "train.batch_size=8", *overrides), 10, size, CPU)
    before = copy.deepcopy(trainer.generator.state_dict())
    losses = torch.stack(run_steps(trainer, 3, size=size))
    assert losses.dtype == torch.float32 and torch.isfinite(losses).all() and (losses > 0).all()
    assert all(p.dtype == torch.float32 for p in [*trainer.generator.parameters(), *trainer.discriminator.parameters()])
    assert any(not torch.equal(before[k], v) for k, v in trainer.generator.state_dict().items())


def test_channels_last_training_runs_and_matches_the_default_layout():
    cl = TrainingStep(config("train.precision=fp32", "train.channels_last=true", "train.batch_size=8"), 10, 32, CPU)
    plain = TrainingStep(config("train.precision=fp32", "train.channels_last=false", "train.batch_size=8"), 10, 32, CPU)
    assert cl.generator.blocks[1].weight.is_contiguous(memory_format=torch.channels_last)
    assert plain.generator.blocks[1].weight.is_contiguous()
    torch.manual_seed(1)
    losses_cl = torch.stack(run_steps(cl, 2))
    torch.manual_seed(1)
    losses_plain = torch.stack(run_steps(plain, 2))
    assert torch.isfinite(losses_cl).all()
    torch.testing.assert_close(losses_cl, losses_plain, rtol=1e-4, atol=1e-5)  # same function, other summation order


def test_freezing_d_during_the_generator_step_changes_nothing():
    """One step of TrainingStep equals the plain recipe: D not frozen, gradients cleared before each update."""
    trainer = TrainingStep(config("train.precision=fp32", "train.batch_size=8"), 10, 32, CPU)
    generator, discriminator = copy.deepcopy(trainer.generator), copy.deepcopy(trainer.discriminator)
    optimizer_g, optimizer_d = make_adam(generator.parameters(), 2e-4, (0.5, 0.999)), make_adam(discriminator.parameters(), 2e-4, (0.5, 0.999))
    noise_rng = copy.deepcopy(trainer.noise_rng)
    pixels, labels = torch.randint(0, 256, (8, 32, 32), dtype=torch.uint8), torch.zeros(8, dtype=torch.long)
    torch.manual_seed(3)
    trainer.step(pixels, labels, 0)
    assert all(p.requires_grad for p in trainer.discriminator.parameters())

    torch.manual_seed(3)
    real = pixels.unsqueeze(1).float() / 127.5 - 1.0
    fake = generator(generator.sample_z(8, noise_rng), labels)
    for optimizer, loss in ((optimizer_g, lambda: 0.5 * (discriminator(fake) - 1).pow(2).mean()),
                            (optimizer_d, lambda: 0.5 * (discriminator(real) - 1).pow(2).mean() + 0.5 * discriminator(fake.detach()).pow(2).mean())):
        optimizer.zero_grad(set_to_none=True)
        loss().backward()
        optimizer.step()
    for ours, reference in ((trainer.generator, generator), (trainer.discriminator, discriminator)):
        for (name, a), b in zip(ours.state_dict().items(), reference.state_dict().values()):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7, msg=name)


def relayout(state, memory_format):
    """A copy of a (nested) state with every 4-D tensor in `memory_format`."""
    if isinstance(state, torch.Tensor):
        return state.contiguous(memory_format=memory_format).clone(memory_format=torch.preserve_format) if state.dim() == 4 else state.clone()
    if isinstance(state, dict):
        return {k: relayout(v, memory_format) for k, v in state.items()}
    if isinstance(state, list):
        return [relayout(v, memory_format) for v in state]
    return copy.deepcopy(state)


def test_optimizer_state_loads_across_memory_layouts():
    """A checkpoint's Adam moments in either layout continue a run of either layout with the same updates.

    (The fused CPU Adam kernel mixes up elements when a moment's layout differs from its
    parameter's; loading re-lays the moments out.)
    """
    trainer = TrainingStep(config("train.precision=fp32", "train.batch_size=8", "train.channels_last=false"), 10, 32, CPU)
    torch.manual_seed(2)
    run_steps(trainer, 1)
    state = trainer.state_dict()
    results = {}
    for saved, memory_format in (("contiguous", torch.contiguous_format), ("channels_last", torch.channels_last)):
        for resumed in ("false", "true"):
            trainer = TrainingStep(config("train.precision=fp32", "train.batch_size=8", f"train.channels_last={resumed}"), 10, 32, CPU)
            trainer.load_state_dict(relayout(state, memory_format))
            for optimizer in (trainer.optimizer_g, trainer.optimizer_d):
                for param, moments in optimizer.state.items():
                    assert moments["exp_avg"].stride() == param.stride() == moments["exp_avg_sq"].stride()
            torch.manual_seed(4)
            run_steps(trainer, 1)
            results[saved, resumed] = trainer.generator.state_dict()
    for resumed in ("false", "true"):
        for key, value in results["contiguous", resumed].items():
            assert torch.equal(results["channels_last", resumed][key], value), (resumed, key)


@pytest.mark.parametrize("model", [pytest.param([], id="seed32", marks=SLOW_ON_THE_CPU), pytest.param(TINY_PAPER28, id="paper28")])
def test_bf16_resume_continues_exactly(digits32, tmp_path, model):
    """On the CPU bf16 training is deterministic too: 3 steps plus a resume to 6 equal 6 straight."""
    overrides = [*TINY_TRAIN, *model, "train.precision=bf16"]
    straight = train(config(*overrides, "train.steps=6"), digits32, tmp_path / "straight")
    train(config(*overrides, "train.steps=3"), digits32, tmp_path / "resumed")
    resumed = train(config(*overrides, "train.steps=6"), digits32, tmp_path / "resumed", resume="auto")
    a, b = load_checkpoint(straight.checkpoint), load_checkpoint(resumed.checkpoint)
    for key in ("generator", "generator_ema", "discriminator"):
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), f"{key}.{name}"
    assert a["grad_scaler"] == {}  # only fp16 runs scale gradients


@pytest.mark.slow  # seed32 in bf16, and the CLI in a subprocess
def test_generation_follows_the_checkpoint_precision(digits32, tmp_path):
    result = train(config(*TINY_TRAIN, "train.steps=2", "train.precision=bf16"), digits32, tmp_path / "run")
    assert LoadedGenerator(result.checkpoint, device="cpu").dtype == torch.bfloat16
    fp32 = LoadedGenerator(result.checkpoint, device="cpu", precision="fp32")
    assert fp32.dtype is None
    with pytest.raises(InputError, match="needs a CUDA device"):
        LoadedGenerator(result.checkpoint, device="cpu", precision="fp16")
    refused = run_cond_lsgan("generate", "--checkpoint", result.checkpoint, "--n", "4", "--out", tmp_path / "gen.h5",
                             "--device", "cpu", "--precision", "fp16")
    assert_one_line_error(refused, "cond-lsgan", "precision 'fp16' needs a CUDA device")
    bf16 = LoadedGenerator(result.checkpoint, device="cpu")
    z = fp32.generator.sample_z(16, torch.Generator().manual_seed(0))
    difference = np.abs(bf16.render(z, None).astype(int) - fp32.render(z, None).astype(int))
    assert difference.mean() < 2.0 and difference.max() <= 16  # bf16 keeps about 3 significant digits


@pytest.mark.parametrize("overrides", [pytest.param(TINY_PAPER28, id="paper28"),
                                       pytest.param([], id="seed32", marks=SLOW_ON_THE_CPU)])
def test_bf16_generation_with_weights_cast_once_equals_autocast_of_fp32_weights(digits32, tmp_path, overrides):
    result = train(config(*TINY_TRAIN, *overrides, "train.steps=2", "train.precision=bf16"), digits32, tmp_path / "run")
    loaded = LoadedGenerator(result.checkpoint, device="cpu")
    linears = [m for m in loaded.generator.modules() if isinstance(m, nn.Linear)]
    assert linears and all(m.weight.dtype == torch.bfloat16 for m in linears)
    state = load_checkpoint(result.checkpoint, CPU)
    plain = build_models(loaded.config.model, len(loaded.classes), loaded.image_size)[0]  # fp32 weights, same layers
    plain.load_state_dict(state["generator_ema"])
    fold_batchnorm(use_fast_paths(plain.to(memory_format=torch.channels_last).eval(), CPU), CPU)  # as loaded
    z = plain.sample_z(40, torch.Generator().manual_seed(3))
    labels = torch.arange(40) % len(loaded.classes) if loaded.conditional else None
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        expected = plain(z, labels).float()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        got = loaded.generator(z, labels).float()
    assert torch.equal(got, expected)


def test_fold_batchnorm_for_generation_equals_eval_batchnorm():
    """Folding paper28's up1_bn into up1 (generation only) computes G with the BatchNorm applied; training refuses it."""
    torch.manual_seed(0)
    generator, _ = build_models(ModelConfig(arch="paper28", conditional=True, z_dim=64, embed_dim=16, width=0.25), 20, 28)
    for _ in range(3):  # running statistics away from their initial 0 and 1
        generator(generator.sample_z(16), torch.randint(0, 20, (16,)))
    with torch.no_grad():
        generator.up1_bn.weight.uniform_(0.5, 1.5)
        generator.up1_bn.bias.uniform_(-0.2, 0.2)
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(copy.deepcopy(generator), CPU)
    generator.eval()
    folded = fold_batchnorm(copy.deepcopy(generator), CPU)
    assert isinstance(folded.up1_bn, nn.Identity) and isinstance(folded.project_bn, nn.BatchNorm1d)
    assert isinstance(fold_batchnorm(copy.deepcopy(generator), torch.device("cuda")).up1_bn, nn.BatchNorm2d)  # CPU only
    z, labels = generator.sample_z(8), torch.randint(0, 20, (8,))
    with torch.no_grad():
        assert relative_error(folded(z, labels), generator(z, labels)) <= 1e-5


def test_paper28_swaps_its_wide_layers_on_the_cpu_only():
    """The swap rules on paper28: G's projection, last deconvolution and D's FC 1024 change class; nothing else, nothing on CUDA."""
    torch.manual_seed(0)
    model = ModelConfig(arch="paper28", conditional=True, z_dim=256, embed_dim=128, width=0.5)  # glyphs-cpu's sizes
    generator, discriminator = build_models(model, 3740, 28)
    def layer_types() -> dict[str, type]:
        return {f"{net.__class__.__name__}.{name}": type(m) for net in (generator, discriminator) for name, m in net.named_modules()}

    before = layer_types()
    for net in (generator, discriminator):
        assert use_fast_paths(net, torch.device("cuda")) is net
    assert layer_types() == before
    use_fast_paths(generator, CPU), use_fast_paths(discriminator, CPU)
    changed = {name: kind for name, kind in layer_types().items() if kind is not before[name]}
    assert changed == {"Paper28Generator.project": OneDNNLinear, "Paper28Generator.up2": FoldConvTranspose2d,
                       "Paper28Discriminator.fc1": OneDNNLinear}
    assert type(discriminator.score) is nn.Linear  # 640 weights: below WIDE_LINEAR


def test_training_with_fast_paths_off_uses_the_plain_layers_and_the_same_weights():
    """train.fast_paths=false builds the same initial weights and state dicts, with plain torch layers only."""
    fast = TrainingStep(config(*TINY_TRAIN), 10, 32, CPU)
    plain = TrainingStep(config(*TINY_TRAIN, "train.fast_paths=false"), 10, 32, CPU)
    assert any(type(m) is UpsampleConv2d for m in fast.generator.modules())
    fast_classes = (UpsampleConv2d, FoldConv2d, FoldConvTranspose2d, OneDNNLinear)
    assert not any(isinstance(m, fast_classes) for m in [*plain.generator.modules(), *plain.discriminator.modules()])
    for key, value in fast.state_dict().items():
        if key.startswith(("generator", "discriminator")):
            assert value.keys() == plain.state_dict()[key].keys()
            assert all(torch.equal(value[name], plain.state_dict()[key][name]) for name in value)
