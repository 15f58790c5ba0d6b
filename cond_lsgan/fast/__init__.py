"""Speed paths: exact faster forms of plain torch layers, swapped in after a model is built.

The models (`cond_lsgan/models`) declare plain layers only: nn.Linear, nn.Conv2d,
nn.ConvTranspose2d, nn.Upsample. `use_fast_paths(model, device)` then replaces, in
place, those for which this project measured a faster form on that device. Every
replacement is a subclass of the layer it replaces with no state of its own (the
module's class is switched, as torch.nn.utils.parametrize does), so parameters,
initialisation, RNG use and state dicts stay exactly as built, and checkpoints move
freely between `train.fast_paths = true` and `false`. A model with the plain layers is
the reference the tests compare against. A new layer needs no fast form to work.

On the CPU:
  nn.Upsample(2x nearest) + 3x3 nn.Conv2d in a Sequential  -> UpsampleConv2d (upsample_conv.py)
  nn.Conv2d / nn.ConvTranspose2d with one output channel   -> FoldConv2d / FoldConvTranspose2d (fold.py)
  nn.Linear with at least WIDE_LINEAR weights              -> OneDNNLinear (onednn.py)
and, for generation only (`fold_batchnorm`), a BatchNorm2d named `<conv>_bn` folded into
the convolution `<conv>` it follows. On CUDA: none, as none has been measured there.
"""

from __future__ import annotations

import torch
from torch import nn

from .fold import FoldConv2d, FoldConvTranspose2d
from .onednn import OneDNNLinear
from .upsample_conv import UpsampleConv2d

# Below about a million weights oneDNN's fixed per-call overhead outweighs its faster
# product (seed32's 819,200-weight projection stays with the BLAS).
WIDE_LINEAR = 1_000_000


def use_fast_paths(model: nn.Module, device: torch.device | str) -> nn.Module:
    """Swap the faster forms for `device` into `model` in place; returns `model`."""
    if torch.device(device).type != "cpu":
        return model
    for module in list(model.modules()):
        if isinstance(module, nn.Sequential):
            _upsample_conv_pairs(module)
    for module in model.modules():
        if type(module) is nn.Linear and module.in_features * module.out_features >= WIDE_LINEAR:
            _switch_class(module, OneDNNLinear)
        elif type(module) is nn.Conv2d and module.out_channels == 1 and _foldable_conv(module):
            _switch_class(module, FoldConv2d)
        elif (type(module) is nn.ConvTranspose2d and module.out_channels == 1 and module.groups == 1
              and module.dilation == (1, 1)):
            _switch_class(module, FoldConvTranspose2d)
    return model


@torch.no_grad()
def fold_batchnorm(model: nn.Module, device: torch.device | str) -> nn.Module:
    """For inference: fold each eval-mode BatchNorm2d `<name>_bn` into the convolution `<name>` before it.

    Eval-mode BatchNorm is an affine map per channel, so the convolution's weight and
    bias absorb it and the BatchNorm becomes nn.Identity: one pass over the map fewer.
    Only for a model that will not train again (generation): the folded model's state
    dict differs. A model's forward must apply `<name>_bn` directly to `<name>`'s output.
    """
    if torch.device(device).type != "cpu":
        return model
    for parent in list(model.modules()):
        for name, conv in list(parent.named_children()):
            norm = getattr(parent, f"{name}_bn", None)
            if type(norm) is nn.BatchNorm2d and isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d)) and conv.bias is not None:
                if norm.training:
                    raise ValueError("fold_batchnorm needs a model in eval mode")
                scale = norm.weight * torch.rsqrt(norm.running_var + norm.eps)  # (out,)
                shape = (1, -1, 1, 1) if isinstance(conv, nn.ConvTranspose2d) else (-1, 1, 1, 1)  # the output-channel axis
                conv.weight = nn.Parameter(conv.weight * scale.view(shape), requires_grad=False)
                conv.bias = nn.Parameter((conv.bias - norm.running_mean) * scale + norm.bias, requires_grad=False)
                setattr(parent, f"{name}_bn", nn.Identity())
    return model


def _upsample_conv_pairs(sequence: nn.Sequential) -> None:
    """[nn.Upsample(scale_factor=2), 3x3 nn.Conv2d with padding 1] -> [nn.Identity, UpsampleConv2d]; indices kept."""
    for index in range(len(sequence) - 1):
        upsample, conv = sequence[index], sequence[index + 1]
        if (type(upsample) is nn.Upsample and upsample.mode == "nearest" and upsample.size is None
                and _is_two(upsample.scale_factor) and type(conv) is nn.Conv2d and conv.kernel_size == (3, 3)
                and conv.stride == (1, 1) and conv.padding == (1, 1) and conv.dilation == (1, 1)
                and conv.groups == 1 and conv.padding_mode == "zeros" and conv.bias is not None):
            sequence[index] = nn.Identity()
            _switch_class(conv, UpsampleConv2d)


def _is_two(scale_factor: float | tuple[float, ...] | None) -> bool:
    factors = scale_factor if isinstance(scale_factor, tuple) else (scale_factor,)
    return all(factor == 2 for factor in factors)


def _foldable_conv(conv: nn.Conv2d) -> bool:
    return (conv.stride == (1, 1) and conv.groups == 1 and conv.dilation == (1, 1) and conv.padding_mode == "zeros"
            and isinstance(conv.padding, tuple) and all(p <= k - 1 for p, k in zip(conv.padding, conv.kernel_size)))


def _switch_class(module: nn.Module, faster: type) -> None:
    """Make `module` an instance of `faster`, a stateless subclass of its class: same parameters, faster forward."""
    assert issubclass(faster, type(module)), (faster, type(module))
    module.__class__ = faster


__all__ = ["use_fast_paths", "fold_batchnorm", "WIDE_LINEAR", "FoldConv2d", "FoldConvTranspose2d", "OneDNNLinear",
           "UpsampleConv2d"]
