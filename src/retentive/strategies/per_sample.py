"""Sums over samples of |per-sample gradient|^p, without a Python loop over samples.

Importance measures need Σ_n |g_n|^p (p=2: Fisher, p=1: MAS) where g_n is one sample's
gradient. One backward of the summed loss gives Σ_n g_n, not this, and a loop of N backwards is
N times slower. Instead, hooks record each layer's input `a` and the gradient `δ` at its output
(one backward per "objective vector", e.g. per class, never per sample), and the per-sample
gradients are rebuilt layer by layer:

- Linear on [N, in]: g_n = δ_n ⊗ a_n, so Σ_n |g_n|^p = (|δ|^p)ᵀ |a|^p (one matmul). Several
  objective vectors c (e.g. one per class for the exact Fisher) share `a`, so Σ_c |δ_c|^p is
  summed first and the matmul is done once.
- Conv2d: g_n = Σ_l δ_{n,l} ⊗ u_{n,l} over the unfolded patches u; the sum over locations does
  not factor, so g_n is formed with one batched einsum per chunk of samples.
- Any other layer with parameters (BatchNorm, ...): `torch.func.vmap` over samples of the
  layer's vector-Jacobian product.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, vjp, vmap

#: conv per-sample gradients are formed this many samples at a time (bounds the memory peak)
CONV_CHUNK = 64


def _pow(x: Tensor, power: int) -> Tensor:
    return x.square() if power == 2 else x.abs() if power == 1 else x.abs().pow(power)


def _linear(module: nn.Linear, a: Tensor, grads: Tensor, power: int) -> dict[str, Tensor]:
    """grads: [C, N, out]; a: [N, in]."""
    summed = _pow(grads, power).sum(0)  # [N, out]
    out = {"weight": summed.t() @ _pow(a, power)}
    if module.bias is not None:
        out["bias"] = summed.sum(0)
    return out


def _conv2d(module: nn.Conv2d, a: Tensor, grads: Tensor, power: int) -> dict[str, Tensor]:
    """grads: [C, N, out, H', W']; a: [N, in, H, W]; groups == 1 and string-free padding."""
    patches = F.unfold(a, module.kernel_size, module.dilation, module.padding, module.stride)  # [N, K, L]
    c, n, out_channels = grads.shape[:3]
    deltas = grads.reshape(c, n, out_channels, -1)  # [C, N, out, L]
    weight = torch.zeros(out_channels, patches.shape[1], dtype=a.dtype, device=a.device)
    for start in range(0, n, CONV_CHUNK):
        stop = start + CONV_CHUNK
        per_sample = torch.einsum("cnol,nkl->cnok", deltas[:, start:stop], patches[start:stop])
        weight += _pow(per_sample, power).sum((0, 1))
    out = {"weight": weight.reshape(module.weight.shape)}
    if module.bias is not None:
        out["bias"] = _pow(deltas.sum(-1), power).sum((0, 1))
    return out


def _generic(module: nn.Module, a: Tensor, grads: Tensor, power: int) -> dict[str, Tensor]:
    """torch.func fallback: vmap over samples of the layer's VJP w.r.t. its own parameters."""
    params = {name: p.detach() for name, p in module.named_parameters(recurse=False)}

    def one_sample(x: Tensor, g: Tensor) -> dict[str, Tensor]:
        _, pull = vjp(lambda p: functional_call(module, p, (x.unsqueeze(0),)), params)
        return pull(g.unsqueeze(0))[0]

    totals = {name: torch.zeros_like(p) for name, p in params.items()}
    for vector in grads:  # objective vectors (classes), never samples
        per_sample = vmap(one_sample)(a, vector)
        for name, g in per_sample.items():
            totals[name] += _pow(g, power).sum(0)
    return totals


def _fast_path(module: nn.Module, a: Tensor) -> Callable[..., dict[str, Tensor]]:
    if isinstance(module, nn.Linear) and a.ndim == 2:
        return _linear
    if (
        isinstance(module, nn.Conv2d)
        and module.groups == 1
        and not isinstance(module.padding, str)
        and module.padding_mode == "zeros"
    ):
        return _conv2d
    return _generic


class LayerRecorder:
    """Forward hooks that keep (module, input, output) for every call of the watched modules."""

    def __init__(self, modules: Iterable[nn.Module]) -> None:
        self.calls: list[tuple[nn.Module, Tensor, Tensor]] = []
        self._handles = [m.register_forward_hook(self._hook) for m in modules]

    def _hook(self, module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        self.calls.append((module, inputs[0].detach(), output))

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def owners(net: nn.Module, params: dict[str, nn.Parameter]) -> dict[nn.Module, dict[str, str]]:
    """Modules that directly own a watched parameter -> {local name: full name}."""
    wanted = {id(p): name for name, p in params.items()}
    found: dict[nn.Module, dict[str, str]] = {}
    for module in net.modules():
        for local, p in module.named_parameters(recurse=False):
            if id(p) in wanted:
                found.setdefault(module, {})[local] = wanted[id(p)]
    return found


def per_sample_power_sums(
    net: nn.Module,
    params: dict[str, nn.Parameter],
    forward: Callable[[], Tensor],
    grad_outputs: Callable[[Tensor], Tensor],
    power: int,
    totals: dict[str, Tensor],
) -> None:
    """Add Σ_c Σ_n |∂(objective_c · out_n)/∂θ|^p to `totals` for every watched parameter.

    `forward()` runs the net and returns the objective's output `out` ([N, ...]);
    `grad_outputs(out)` returns the objective vectors `[C, *out.shape]` (e.g. √p_c one-hots for
    the exact Fisher). Each objective vector gives one backward over the whole batch.
    """
    modules = owners(net, params)
    recorder = LayerRecorder(modules)
    try:
        out = forward()
    finally:
        recorder.remove()
    calls = [(m, a, o) for m, a, o in recorder.calls if o.requires_grad]
    if not calls:
        return
    vectors = grad_outputs(out).detach()
    vectors = vectors[vectors.flatten(1).abs().sum(1) > 0]  # e.g. classes no sample can have
    if len(vectors) == 0:
        return
    outputs = [o for _, _, o in calls]
    # one backward per objective vector (C of them, never N): measured as fast as a vmapped
    # `is_grads_batched` backward for MLPs and faster for CNNs (max-pool has no batching rule)
    last = len(vectors) - 1
    per_vector = [torch.autograd.grad(out, outputs, v, retain_graph=c < last, allow_unused=True)
                  for c, v in enumerate(vectors)]
    grads = tuple(None if parts[0] is None else torch.stack(parts) for parts in zip(*per_vector, strict=True))
    for (module, a, _), g in zip(calls, grads, strict=True):
        if g is None:
            continue
        contributions = _fast_path(module, a)(module, a, g.detach(), power)
        for local, value in contributions.items():
            name = modules[module].get(local)
            if name is not None:
                totals[name] += value
