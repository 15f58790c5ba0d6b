"""`OneDNNLinear`: nn.Linear whose float32 CPU products run through oneDNN, not the BLAS.

PyTorch sends float32 matrix products on the CPU to its BLAS (MKL in the pip wheels),
and MKL runs its AVX2 kernels on AMD CPUs: half the AVX-512 rate that oneDNN, the
library PyTorch already uses for convolutions and bf16 products, reaches on the same
cores (docs/results.md has the figures), in the same float32
arithmetic. `OneDNNLinear` computes the forward product and both backward products
(input and weight gradients) with oneDNN's matmul, through an op PyTorch's own compiler
uses for CPU linear layers (`torch.ops.mkldnn._linear_pointwise`).

It falls back to nn.Linear wherever that path does not apply: not on the CPU, not
float32, under autocast (bf16 products go to oneDNN already), inside torch.compile, an
empty batch, or a PyTorch without oneDNN. It subclasses nn.Linear and adds no state, so
`fast.use_fast_paths` swaps it in without touching parameters or state dicts; the tests
check it computes the same function and gradients. It is differentiable once: a second
derivative (a gradient penalty, say) raises an error; train with `train.fast_paths =
false` for that. Worth it for wide layers only: for a small product the op's fixed
overhead exceeds MKL's time.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable


def _product(a: Tensor, b: Tensor, bias: Tensor | None) -> Tensor:
    """a @ b.T + bias, by oneDNN's float32 matmul."""
    return torch.ops.mkldnn._linear_pointwise(a, b, bias, "none", [], "")


class _LinearFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _product(x, weight, bias)

    @staticmethod
    @once_differentiable  # its products have no autograd: a double backward errors, never silently wrong
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        x, weight = ctx.saved_tensors
        grad = grad.contiguous()
        grad_x = _product(grad, weight.t(), None) if ctx.needs_input_grad[0] else None  # grad @ W
        grad_weight = _product(grad.t(), x.t(), None) if ctx.needs_input_grad[1] else None  # grad.T @ x
        grad_bias = grad.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_weight, grad_bias


@functools.cache  # fixed for the process: checked once, not on every forward
def onednn_available() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


class OneDNNLinear(nn.Linear):
    """nn.Linear on (N, in) inputs, with float32 CPU products computed by oneDNN."""

    def forward(self, x: Tensor) -> Tensor:
        use_onednn = (x.device.type == "cpu" and x.dim() == 2 and x.shape[0] > 0 and x.dtype == torch.float32
                      and self.weight.dtype == torch.float32 and not torch.is_autocast_enabled("cpu")
                      and not torch.compiler.is_compiling() and onednn_available())
        if not use_onednn:
            return F.linear(x, self.weight, self.bias)
        return _LinearFunction.apply(x.contiguous(), self.weight, self.bias)
