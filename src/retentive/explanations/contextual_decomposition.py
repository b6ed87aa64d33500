"""Contextual decomposition (Singh et al. 2019) propagated generically through a ContinualNet.

The input is split into a relevant part (the group whose contribution we want) and an irrelevant
part, `x = rel + irrel`, and both are pushed through the network layer by layer so that at every
layer `rel + irrel` equals the network's own activation. The logits therefore decompose exactly:
`rel_logits + irrel_logits == net(x, t)` (in eval semantics, see below).

Rules per layer (one function each, looked up by type, so any nn.Sequential of these works):
- Conv2d / Linear / BatchNorm (affine): linear part applied to each, the bias split between them in
  proportion to |linear part| (CDEP's rule);
- ReLU: `rel' = relu(rel)`, `irrel' = relu(rel + irrel) - relu(rel)`;
- MaxPool2d (any kernel/stride/padding/dilation): both take the value at the argmax of `rel + irrel`;
- AvgPool2d / AdaptiveAvgPool2d / Flatten / Identity: linear without bias, applied to each;
- Dropout: identity (the decomposition explains the eval-mode network); BatchNorm uses its
  running statistics when it has them (eval rule), the batch statistics of `rel + irrel` otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from retentive.errors import ConfigError
from retentive.models.continual_net import ContinualNet

Pair = tuple[Tensor, Tensor]

#: guards the proportional bias split against 0/0 (CDEP's stabilising constant)
EPS = 1e-20


def _split_bias(rel: Tensor, irrel: Tensor, bias: Tensor | None) -> Pair:
    """Give each part a share of `bias` proportional to its magnitude (shares sum to the bias)."""
    if bias is None:
        return rel, irrel
    rel_abs = rel.abs()
    share = rel_abs / (rel_abs + irrel.abs()).add_(EPS)
    return torch.addcmul(rel, share, bias), torch.addcmul(irrel, 1.0 - share, bias)


def _both(fn: Callable[[Tensor], Tensor], rel: Tensor, irrel: Tensor) -> Pair:
    """Apply a linear, bias-free map to both parts in one call (one kernel launch, one GEMM)."""
    out = fn(torch.cat([rel, irrel]))
    return out[: len(rel)], out[len(rel):]


def _conv2d(module: nn.Conv2d, rel: Tensor, irrel: Tensor) -> Pair:
    def linear(x: Tensor) -> Tensor:
        if module.padding_mode != "zeros":
            raise ConfigError(
                "explanation",
                f"contextual decomposition supports zero-padded Conv2d only, not padding_mode='{module.padding_mode}'",
            )
        return F.conv2d(x, module.weight, None, module.stride, module.padding, module.dilation, module.groups)

    rel, irrel = _both(linear, rel, irrel)
    bias = None if module.bias is None else module.bias.view(1, -1, 1, 1)
    return _split_bias(rel, irrel, bias)


def _linear(module: nn.Linear, rel: Tensor, irrel: Tensor) -> Pair:
    rel, irrel = _both(lambda x: F.linear(x, module.weight), rel, irrel)
    return _split_bias(rel, irrel, module.bias)


def _batch_norm(module: nn.modules.batchnorm._BatchNorm, rel: Tensor, irrel: Tensor) -> Pair:
    """BN as the affine map `a * x + b` (running stats if tracked, else the batch's own)."""
    total = rel + irrel
    if module.running_mean is not None and module.running_var is not None:
        mean, var = module.running_mean, module.running_var
    else:
        dims = [0] + list(range(2, total.ndim))
        mean, var = total.mean(dims), total.var(dims, unbiased=False)
    scale = torch.rsqrt(var + module.eps)
    if module.weight is not None:
        scale = scale * module.weight
    shift = -mean * scale
    if module.bias is not None:
        shift = shift + module.bias
    shape = [1, -1] + [1] * (total.ndim - 2)
    scale, shift = scale.view(shape), shift.view(shape)
    return _split_bias(rel * scale, irrel * scale, shift)


def _relu(module: nn.Module, rel: Tensor, irrel: Tensor) -> Pair:
    rel_out = F.relu(rel)
    return rel_out, F.relu(rel + irrel) - rel_out


def _max_pool2d(module: nn.MaxPool2d, rel: Tensor, irrel: Tensor) -> Pair:
    """Both parts take the entry at the window's argmax of the total (works for any window)."""
    index = _pool_argmax(module, rel + irrel)
    return _gather(rel, index), _gather(irrel, index)


def _pool_argmax(module: nn.MaxPool2d, total: Tensor) -> Tensor:
    return F.max_pool2d(
        total, module.kernel_size, module.stride, module.padding, module.dilation,
        ceil_mode=module.ceil_mode, return_indices=True,
    )[1]


def _gather(x: Tensor, index: Tensor) -> Tensor:
    """The entries of `x` at max-pool indices `index` (flat per channel, as max_pool2d gives them)."""
    return x.flatten(2).gather(2, index.flatten(2)).view_as(index)


def _apply_each(module: nn.Module, rel: Tensor, irrel: Tensor) -> Pair:
    """Bias-free linear layers (average pooling, reshaping): the module itself, on each part."""
    return _both(module, rel, irrel)


def _identity(module: nn.Module, rel: Tensor, irrel: Tensor) -> Pair:
    return rel, irrel


RULES: dict[type[nn.Module], Callable[..., Pair]] = {
    nn.Conv2d: _conv2d,
    nn.Linear: _linear,
    nn.BatchNorm1d: _batch_norm,
    nn.BatchNorm2d: _batch_norm,
    nn.ReLU: _relu,
    nn.MaxPool2d: _max_pool2d,
    nn.AvgPool2d: _apply_each,
    nn.AdaptiveAvgPool2d: _apply_each,
    nn.Flatten: _apply_each,
    nn.Identity: _identity,
    nn.Dropout: _identity,
    nn.Dropout2d: _identity,
}


def _rule(module: nn.Module) -> Callable[..., Pair] | None:
    return RULES.get(type(module))


def check_decomposable(net: ContinualNet) -> None:
    """Raise one clear ConfigError naming the first layer CD cannot propagate through."""
    if not isinstance(net.backbone, nn.Sequential):
        raise ConfigError(
            "explanation",
            f"contextual decomposition needs an nn.Sequential backbone, got {type(net.backbone).__name__}",
        )
    for name, module in net.backbone.named_children():
        if _rule(module) is None:
            supported = ", ".join(sorted(cls.__name__ for cls in RULES))
            raise ConfigError(
                "explanation",
                f"contextual decomposition cannot propagate through layer backbone.{name} ({type(module).__name__})",
                f"use a backbone built only from {supported}, or another explanation",
            )


def decompose_features(backbone: nn.Sequential, rel: Tensor, irrel: Tensor) -> Pair:
    """Push `(rel, irrel)` through every layer of the backbone."""
    for module in backbone:
        rule = _rule(module)
        if rule is None:  # check_decomposable names it before training; this guards direct calls
            raise ConfigError(
                "explanation", f"contextual decomposition cannot propagate through {type(module).__name__}"
            )
        rel, irrel = rule(module, rel, irrel)
    return rel, irrel


# -- the same decomposition when every layer's actual output is known -----------------------
# `total_in`/`total_out` are the layer's input and output in the network's own forward pass; then
# `irrel = total - rel` everywhere and only `rel` is pushed through the weights.

def _rel_share_of_bias(lin_rel: Tensor, total_out: Tensor, bias: Tensor | None) -> Tensor:
    if bias is None:
        return lin_rel
    """`rel`'s share of the bias, with `irrel`'s linear part read off the recorded output (one |rel|,
    the eps added in place, multiply-add fused: fewer passes over each conv output and its grad)."""
    lin_irrel = total_out - bias - lin_rel
    rel_abs = lin_rel.abs()
    return torch.addcmul(lin_rel, rel_abs / (rel_abs + lin_irrel.abs()).add_(EPS), bias)


def _conv2d_given(module: nn.Conv2d, rel: Tensor, total_in: Tensor, total_out: Tensor) -> Tensor:
    lin_rel = F.conv2d(rel, module.weight, None, module.stride, module.padding, module.dilation, module.groups)
    return _rel_share_of_bias(lin_rel, total_out, None if module.bias is None else module.bias.view(1, -1, 1, 1))


def _linear_given(module: nn.Linear, rel: Tensor, total_in: Tensor, total_out: Tensor) -> Tensor:
    return _rel_share_of_bias(F.linear(rel, module.weight), total_out, module.bias)


def _relu_given(module: nn.Module, rel: Tensor, total_in: Tensor, total_out: Tensor) -> Tensor:
    return F.relu(rel)


def _max_pool2d_given(module: nn.MaxPool2d, rel: Tensor, total_in: Tensor, total_out: Tensor,
                      argmax: Tensor | None = None) -> Tensor:
    """The recorded argmax of the forward pass when there is one; else recomputed from its input."""
    return _gather(rel, _pool_argmax(module, total_in) if argmax is None else argmax)


def _apply_given(module: nn.Module, rel: Tensor, total_in: Tensor, total_out: Tensor) -> Tensor:
    return module(rel)


def _identity_given(module: nn.Module, rel: Tensor, total_in: Tensor, total_out: Tensor) -> Tensor:
    return rel


GIVEN_RULES: dict[type[nn.Module], Callable[..., Tensor]] = {
    nn.Conv2d: _conv2d_given,
    nn.Linear: _linear_given,
    nn.ReLU: _relu_given,
    nn.MaxPool2d: _max_pool2d_given,
    nn.AvgPool2d: _apply_given,
    nn.AdaptiveAvgPool2d: _apply_given,
    nn.Flatten: _apply_given,
    nn.Identity: _identity_given,
}


def forward_matches_decomposition(backbone: nn.Sequential) -> bool:
    """Whether the backbone's own forward computes what CD explains (no BatchNorm, and no active
    Dropout), so its recorded activations can stand in for `rel + irrel`."""
    for module in backbone:
        if isinstance(module, nn.Dropout | nn.Dropout2d):
            if module.training and module.p > 0:
                return False
        elif type(module) not in GIVEN_RULES:
            return False
    return True


def decompose_features_given(backbone: nn.Sequential, rel: Tensor, x: Tensor, outputs: list[Tensor],
                             argmaxes: list[Tensor | None] | None = None) -> Pair:
    """`decompose_features` from the recorded layer outputs of the forward pass on `x` (and, where
    recorded, its max-pool indices, so they are not computed a second time)."""
    total_in = x
    argmaxes = argmaxes or [None] * len(outputs)
    for module, total_out, argmax in zip(backbone, outputs, argmaxes, strict=True):
        rule = GIVEN_RULES.get(type(module), _identity_given)  # only eval-mode dropout falls back
        if argmax is not None:
            rel = _max_pool2d_given(module, rel, total_in, total_out, argmax)
        else:
            rel = rule(module, rel, total_in, total_out)
        total_in = total_out
    return rel, total_in - rel


def decompose_heads(net: ContinualNet, rel: Tensor, irrel: Tensor, t: Tensor | None) -> Pair:
    """The heads' share of the decomposition (multi-head routing and -inf padding included)."""
    n = len(rel)
    t2 = None if t is None else torch.cat([t, t])

    def score(head: nn.Linear) -> Tensor:
        return torch.cat(_linear(head, rel, irrel))

    both = net.apply_heads(score, t2, 2 * n, rel)
    return both[:n], both[n:]


def decompose(net: ContinualNet, rel: Tensor, irrel: Tensor, t: Tensor | None = None) -> Pair:
    """Logits of `net` split into the contribution of `rel` and of `irrel` (they sum to the logits).

    Multi-head nets route each sample to its task's head; padded (absent) classes are -inf in both.
    """
    return decompose_heads(net, *decompose_features(net.backbone, rel, irrel), t)
