"""The label mapping Φ and the fused tiled-label concatenation, against their plain forms."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cond_lsgan.models.embedding import LabelConcatConv, LabelEmbedding, soft_labels


def test_lookup_equals_linear_layer_on_one_hot():
    torch.manual_seed(0)
    embed = LabelEmbedding(3740, 256)
    nn.init.normal_(embed.bias)  # a non-zero bias, so it is tested too
    linear = nn.Linear(3740, 256)
    with torch.no_grad():
        linear.weight.copy_(embed.weight.t())
        linear.bias.copy_(embed.bias)
    labels = torch.tensor([0, 3739, 17, 17, 1000])
    torch.testing.assert_close(embed(labels), linear(F.one_hot(labels, 3740).float()), rtol=0, atol=1e-6)
    soft = torch.softmax(torch.randn(4, 3740), dim=1)
    torch.testing.assert_close(embed(soft), linear(soft), rtol=1e-5, atol=1e-6)


def test_soft_label_mix_is_the_mix_of_embeddings():
    torch.manual_seed(1)
    embed = LabelEmbedding(10, 8)
    weights = torch.tensor([0.0, 0.25, 1.0])
    mix = soft_labels(2, 7, weights, 10)
    assert mix.shape == (3, 10) and torch.allclose(mix.sum(dim=1), torch.ones(3))
    expected = (1 - weights)[:, None] * embed(torch.tensor([2])) + weights[:, None] * embed(torch.tensor([7]))
    torch.testing.assert_close(embed(mix), expected)


@pytest.mark.parametrize("kernel, stride, padding, size", [(5, 2, 2, 14), (5, 2, 2, 28), (3, 2, 1, 16), (3, 1, 1, 7), (5, 1, 0, 9)])
def test_fused_equals_naive_in_outputs_and_gradients(kernel, stride, padding, size):
    torch.manual_seed(2)
    layer = LabelConcatConv(12, 20, 16, kernel, stride, padding, mode="fused")
    features = torch.randn(4, 12, size, size, requires_grad=True)
    label = torch.randn(4, 20, requires_grad=True)
    results = {}
    for mode in ("fused", "naive"):
        layer.mode = mode
        out = layer(features, label)
        loss = (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum()
        grads = torch.autograd.grad(loss, [features, label, layer.conv.weight, layer.conv.bias])
        results[mode] = (out, *grads)
    for fused, naive in zip(results["fused"], results["naive"]):
        assert fused.shape == naive.shape
        assert ((fused - naive).abs().max() / naive.abs().max()).item() <= 1e-5


def test_fused_bias_map_is_not_constant_at_the_border():
    """Zero padding: border positions see fewer taps, so the label's contribution varies."""
    torch.manual_seed(3)
    layer = LabelConcatConv(1, 4, 2, 5, 2, 2)
    bias_map = layer.label_bias_map(torch.randn(1, 4), 14, 14, torch.float32)
    assert bias_map.shape == (1, 2, 7, 7)
    assert not torch.allclose(bias_map[0, 0, 0, 0], bias_map[0, 0, 3, 3])
    torch.testing.assert_close(bias_map[0, :, 2, 2], bias_map[0, :, 3, 3])  # interior positions agree
