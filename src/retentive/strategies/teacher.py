"""Teacher: a frozen copy of the network, the target of distillation (LwF and friends).

The teacher is part of a strategy's state, so it must survive a checkpoint that is loaded with
`torch.load(weights_only=True)`: only its weights are saved, and loading rebuilds the module from
the architecture template bound in `setup` (the live net, copied when needed).
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn


class Teacher:
    """A frozen snapshot of a net: eval mode (no dropout noise in the targets), no gradients."""

    def __init__(self) -> None:
        self.net: nn.Module | None = None
        self._template: nn.Module | None = None

    def __bool__(self) -> bool:
        return self.net is not None

    def bind(self, net: nn.Module) -> None:
        """Remember the architecture, so weights alone can be turned back into a teacher on resume."""
        self._template = net

    def snapshot(self, net: nn.Module) -> None:
        """Freeze a copy of `net` as it is now (a copy, never a reference to live parameters)."""
        self.net = self._frozen(copy.deepcopy(net))

    @staticmethod
    def _frozen(net: nn.Module) -> nn.Module:
        net.eval()
        for p in net.parameters():
            p.requires_grad_(False)
        return net

    def _on(self, device: torch.device) -> nn.Module:
        """The teacher on `device`: Lightning moves the live net between fits, the teacher follows."""
        assert self.net is not None, "no teacher yet: call snapshot() first"
        first = next(self.net.parameters(), None)
        if first is not None and first.device != device:
            self.net.to(device)
        return self.net

    @torch.no_grad()
    def __call__(self, x: Tensor, t: Tensor | None = None) -> Tensor:
        return self._on(x.device)(x, t)

    @torch.no_grad()
    def features(self, x: Tensor) -> Tensor:
        """Backbone features (a ContinualNet teacher), to score several heads with one backbone pass."""
        return self._on(x.device).features(x)

    def head_logits(self, features: Tensor, t: Tensor) -> Tensor:
        with torch.no_grad():
            return self._on(features.device).head_logits(features, t)

    def state_dict(self) -> dict:
        """`{}` without a teacher, else `{"net": weights}` (tensors only)."""
        return {} if self.net is None else {"net": self.net.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if not state:
            self.net = None
            return
        if self._template is None:
            raise RuntimeError("Teacher.load_state_dict needs bind(net) first (the strategy's setup)")
        net = copy.deepcopy(self._template)
        net.load_state_dict(state["net"])
        self.net = self._frozen(net)
