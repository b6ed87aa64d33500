"""What the chosen weights become: zero (pruning) or noise N(0, std(w)/10) (the seed's default).

std(w) is the population standard deviation of the whole parameter tensor the weight belongs to
(np.std in the seed). The noise is drawn once per parameter from a seeded generator and reused for
every importance and every p, so two importances that replace the same weight replace it by the
same value: the curves differ by which weights are chosen, not by the draw.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

REPLACE = ("zero", "noise")
NOISE_SCALE = 0.1  # noise std as a fraction of the parameter's std


def replacement_values(params: dict[str, nn.Parameter], how: str, seed: int = 0) -> dict[str, Tensor]:
    """The value each weight would take if replaced."""
    if how not in REPLACE:
        raise ValueError(f"replace must be one of {REPLACE}, got {how!r}")
    if how == "zero":
        return {n: torch.zeros_like(p.detach()) for n, p in params.items()}
    generator = torch.Generator().manual_seed(seed)
    values = {}
    for name, p in params.items():
        std = float(p.detach().double().std(correction=0)) if p.numel() > 1 else 0.0
        values[name] = (torch.randn(p.shape, generator=generator, dtype=torch.float64) * NOISE_SCALE * std).to(p)
    return values


@contextmanager
def replaced(params: dict[str, nn.Parameter], masks: dict[str, Tensor], values: dict[str, Tensor]) -> Iterator[int]:
    """Inside the block, masked weights hold `values`; afterwards the originals are back.
    Yields the number of weights replaced."""
    saved = {n: params[n].detach().clone() for n in masks}
    try:
        with torch.no_grad():
            for name, mask in masks.items():
                mask = mask.to(params[name].device)
                params[name].copy_(torch.where(mask, values[name].to(params[name].device), params[name]))
        yield int(sum(int(m.sum()) for m in masks.values()))
    finally:
        with torch.no_grad():
            for name, original in saved.items():
                params[name].copy_(original)
