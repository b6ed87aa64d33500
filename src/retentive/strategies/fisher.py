"""Diagonal Fisher information of a classifier, four ways (the ones the literature mixes up).

- exact:     E_x Σ_c p(c|x) (∂ log p(c|x)/∂θ)²      (expectation over the model's predictive)
- sampled:   E_x (∂ log p(ỹ|x)/∂θ)²,  ỹ ~ p(·|x)     (one Monte-Carlo label per example)
- empirical: E_x (∂ log p(y|x)/∂θ)²,  y the true label ("empirical Fisher")
- batched:   Σ_b |b| (∂ mean_{x∈b} log p(y|x)/∂θ)² / N  (square of minibatch-mean gradients, as
             Avalanche / FACIL compute it; biased towards 0 for large batches, kept for comparison)

All are averages over examples (not sums), computed in eval mode, so λ does not scale with the
number of examples used. The first three use exact per-sample gradients (`per_sample.py`).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from retentive.data.batch import Batch
from retentive.strategies.per_sample import per_sample_power_sums

FISHER_KINDS = ("exact", "sampled", "empirical", "batched")


def _finite_logits(logits: Tensor) -> Tensor:
    """Multi-head nets pad short heads with -inf; those classes have probability 0."""
    return logits.masked_fill(torch.isinf(logits), torch.finfo(logits.dtype).min / 4)


def fisher_vectors(kind: str, log_probs: Tensor, y: Tensor, generator: torch.Generator | None) -> Tensor:
    """Objective vectors [C', N, C] for the per-sample backward of `log_probs` ([N, C])."""
    if kind == "exact":
        probs = log_probs.detach().exp()
        eye = torch.eye(log_probs.shape[1], dtype=log_probs.dtype, device=log_probs.device)
        return probs.sqrt().t().unsqueeze(-1) * eye.unsqueeze(1)  # [C, N, C]: √p_nc at column c
    if kind == "sampled":
        probs = log_probs.detach().exp()
        labels = torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(1).to(y.device)
    else:
        labels = y
    return F.one_hot(labels, log_probs.shape[1]).to(log_probs.dtype).unsqueeze(0)


def fisher_sums(
    net: nn.Module,
    params: dict[str, nn.Parameter],
    batches: Iterable[Batch | tuple[Tensor, ...]],
    kind: str,
    num_examples: int | None = None,
    generator: torch.Generator | None = None,
) -> tuple[dict[str, Tensor], int]:
    """(Σ over examples of the squared gradients, number of examples) for the given kind.

    Returned as sums so that distributed processes can add theirs before dividing.
    """
    if kind not in FISHER_KINDS:
        raise ValueError(f"unknown Fisher kind {kind!r}; expected one of {FISHER_KINDS}")
    totals = {name: torch.zeros_like(p, dtype=torch.float32) for name, p in params.items()}
    seen = 0
    was_training = net.training
    net.eval()
    device = next(iter(params.values())).device
    try:
        for batch in batches:
            batch = Batch.of(batch)
            x, y, t = batch.x.to(device), batch.y.to(device), batch.t.to(device)
            if num_examples is not None:
                keep = num_examples - seen
                if keep <= 0:
                    break
                x, y, t = x[:keep], y[:keep], t[:keep]
            if kind == "batched":
                _batched_step(net, params, x, y, t, totals)
            else:
                per_sample_power_sums(
                    net,
                    params,
                    lambda x=x, t=t: F.log_softmax(_finite_logits(net(x, t)), dim=1),
                    lambda log_probs, y=y: fisher_vectors(kind, log_probs, y, generator),
                    2,
                    totals,
                )
            seen += len(y)
    finally:
        net.train(was_training)
    return totals, seen


def _batched_step(
    net: nn.Module, params: dict[str, nn.Parameter], x: Tensor, y: Tensor, t: Tensor, totals: dict[str, Tensor]
) -> None:
    names = list(params)
    loss = F.cross_entropy(_finite_logits(net(x, t)), y)
    grads = torch.autograd.grad(loss, [params[n] for n in names], allow_unused=True)
    for name, g in zip(names, grads, strict=True):
        if g is not None:
            totals[name] += g.detach().square() * len(y)
