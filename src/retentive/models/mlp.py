"""Fully-connected backbone (2x400 by default, as in the continual-learning literature)."""

from __future__ import annotations

from collections.abc import Sequence
from math import prod

from torch import nn


def mlp_backbone(
    input_shape: Sequence[int], hidden: Sequence[int] = (400, 400), dropout: float = 0.0
) -> tuple[nn.Sequential, int]:
    """Flatten -> [Linear -> ReLU (-> Dropout)] per hidden size; returns (backbone, feature dim)."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = prod(input_shape)
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = size
    return nn.Sequential(*layers), width
