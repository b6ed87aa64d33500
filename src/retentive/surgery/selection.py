"""Which weights a surgery replaces: the fraction p least (or most) important, model- or layer-wise.

Quantiles of importances with ties are ill-defined: the sign-flip measure gives Ω = 1 to every
weight that never flipped, so "the 10% least important" may sit inside one huge tie. The seed's
`ModelAugmentation` replaced `Ω < quantile value`, which then replaces far fewer than p (none of the
tied weights). Here the weights are ordered by Ω with ties broken in a seeded random order, and
exactly round(p·n) weights are taken, n the size of the model (model-wise) or of each layer
(layer-wise: a layer is a module, its weight and bias together, as in the seed).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

SCOPES = ("model", "layer")
REMOVE = ("least", "most")


def tie_broken_order(values: Tensor, generator: torch.Generator) -> Tensor:
    """Indices of the flat `values` from least to most; equal values in a seeded random order
    (a random shuffle, then a stable sort)."""
    shuffle = torch.randperm(values.numel(), generator=generator)
    return shuffle[torch.argsort(values.flatten()[shuffle], stable=True)]


def layer_of(name: str) -> str:
    """'backbone.0.weight' -> 'backbone.0' (the module holding the parameter)."""
    return name.rsplit(".", 1)[0]


def count(fraction: float, size: int) -> int:
    """round(fraction · size), halves up (so p = 0.5 of 3 is 2, not banker's 2 or 1)."""
    return min(size, int(fraction * size + 0.5))


class Ranking:
    """The order of every weight under one importance, ready to give masks for any p."""

    def __init__(self, importance: dict[str, Tensor], scope: str, seed: int = 0) -> None:
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
        self.names = list(importance)
        self.shapes = {n: importance[n].shape for n in self.names}
        if scope == "model":
            groups: dict[str, list[str]] = {"model": self.names}
        else:
            groups = {}
            for name in self.names:
                groups.setdefault(layer_of(name), []).append(name)
        generator = torch.Generator().manual_seed(seed)
        self.groups = list(groups.values())
        self.orders = [tie_broken_order(torch.cat([importance[n].detach().flatten().cpu().double() for n in group]),
                                        generator) for group in self.groups]

    def masks(self, fraction: float, remove: str = "least") -> dict[str, Tensor]:
        """Boolean mask per parameter, True where the weight is replaced."""
        if remove not in REMOVE:
            raise ValueError(f"remove must be one of {REMOVE}, got {remove!r}")
        out = {}
        for group, order in zip(self.groups, self.orders, strict=True):
            k = count(fraction, order.numel())
            chosen = order[:k] if remove == "least" else order[order.numel() - k:]
            flat = torch.zeros(order.numel(), dtype=torch.bool)
            flat[chosen] = True
            sizes = [self.shapes[n].numel() for n in group]
            for name, part in zip(group, flat.split(sizes), strict=True):
                out[name] = part.view(self.shapes[name])
        return out


def replaced_per_layer(masks: dict[str, Tensor]) -> dict[str, int]:
    """How many weights each layer (module) has replaced."""
    counts: dict[str, int] = {}
    for name, mask in masks.items():
        counts[layer_of(name)] = counts.get(layer_of(name), 0) + int(mask.sum())
    return counts


def layer_sizes(shapes: dict[str, Sequence[int] | torch.Size]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for name, shape in shapes.items():
        sizes[layer_of(name)] = sizes.get(layer_of(name), 0) + int(torch.Size(shape).numel())
    return sizes
