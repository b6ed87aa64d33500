"""Herding: pick samples, in order, whose running mean follows the mean of a whole set.

iCaRL's exemplar selection (Rebuffi et al. 2017, Algorithm 4; Welling 2009): step k adds the sample
p_k = argmin_x ‖μ − (x + Σ_{j<k} p_j) / k‖ that brings the mean of the k chosen closest to the
mean μ of all samples, never choosing a sample twice (as mammoth's `fill_buffer` does). Every
prefix of the result is itself a good summary, which is why iCaRL shrinks an exemplar set by
keeping its first m samples.
"""

from __future__ import annotations

import torch
from torch import Tensor


def herding(features: Tensor, m: int) -> Tensor:
    """Row indices of min(m, len(features)) samples of `features` `[n, d]`, in selection order.

    ‖μ − (s + x)/k‖² = const − (2/k)·(μ − s/k)·x + ‖x‖²/k², so each step is one matrix-vector
    product (float64, so near-ties do not depend on summation order): argmin_x ‖x‖² − 2·(kμ − s)·x.
    Deterministic: ties go to the lowest index.
    """
    if features.ndim != 2:
        raise ValueError(f"herding expects [n, d] features, got shape {tuple(features.shape)}")
    n = len(features)
    m = max(0, min(int(m), n))
    f = features.detach().double()
    target = f.mean(0)
    norms = (f * f).sum(1)
    running = torch.zeros_like(target)
    taken = torch.zeros(n, dtype=torch.bool, device=f.device)
    chosen = torch.empty(m, dtype=torch.long)
    for k in range(1, m + 1):
        cost = norms - 2 * (f @ (k * target - running))
        cost[taken] = float("inf")
        i = int(cost.argmin())
        chosen[k - 1] = i
        taken[i] = True
        running += f[i]
    return chosen
