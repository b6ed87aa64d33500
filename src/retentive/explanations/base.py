"""ExplanationLoss: penalties on a model's explanations, added to the task loss."""

from __future__ import annotations

from torch import Tensor

from retentive.models.continual_net import ContinualNet


class ExplanationLoss:
    """Callable `(net, x, y, mask, t) -> scalar`; the module adds `weight * loss` to the task loss."""

    #: whether the loss needs the dataset's spurious-region mask
    needs_mask: bool = True

    def __init__(self, weight: float = 1.0) -> None:
        self.weight = weight

    def check(self, net: ContinualNet) -> None:
        """Raise a ConfigError before training if this loss cannot explain `net` (default: it can)."""

    def __call__(self, net: ContinualNet, x: Tensor, y: Tensor, mask: Tensor | None, t: Tensor) -> Tensor:
        raise NotImplementedError
