"""ImportanceStrategy: one interface for every "Ω per parameter + quadratic anchor" method.

Subclasses only say how Ω is measured (`compute_importance`); this class picks the protected
parameters (the shared backbone, plus the heads when `include_heads`), folds each task's Ω into a
`Consolidation` (O(#params) memory however many tasks), and adds (λ/2)·Σ Ω (θ − θ*)² to the loss.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from retentive.data.batch import Batch
from retentive.errors import ConfigError
from retentive.strategies.base import Strategy, device_of
from retentive.strategies.consolidation import MODES, Consolidation


def check_lambda(value: float, key: str = "strategy.lambda_") -> float:
    if not isinstance(value, int | float) or value < 0 or value != value:
        raise ConfigError(key, f"must be a number >= 0, got {value!r}", "the penalty weight cannot be negative")
    return float(value)


class ImportanceStrategy(Strategy):
    """Penalty (λ/2)·Σ_i Ω_i (θ_i − θ*_i)², Ω and θ* consolidated over finished tasks."""

    #: default consolidation of successive tasks ("per_task": exact Σ_t; "online": running Ω, last anchor)
    default_mode = "per_task"

    def __init__(
        self,
        lambda_: float = 1.0,
        include_heads: bool = False,
        consolidation: str | None = None,
        gamma: float = 1.0,
    ) -> None:
        self.lambda_ = check_lambda(lambda_)
        mode = consolidation or self.default_mode
        if mode not in MODES:
            raise ConfigError("strategy.consolidation", f"unknown mode {mode!r}", f"choose one of {', '.join(MODES)}")
        if not 0.0 <= gamma <= 1.0:
            raise ConfigError("strategy.gamma", f"decay {gamma} is outside [0, 1]")
        self.include_heads = include_heads
        self.consolidated = Consolidation(mode, gamma)
        self.last_importance: dict[str, Tensor] = {}

    # -- which parameters ---------------------------------------------------------------
    def protected(self, net: nn.Module) -> dict[str, nn.Parameter]:
        """Backbone parameters (and heads' with `include_heads`), by name in `net`."""
        prefixes = ("backbone.", "heads.") if self.include_heads else ("backbone.",)
        return {n: p for n, p in net.named_parameters() if n.startswith(prefixes) and p.requires_grad}

    def setup(self, net: nn.Module) -> None:
        if not self.protected(net):
            raise ConfigError(
                "strategy.include_heads",
                f"{type(self).__name__} found no trainable backbone parameters to protect",
                "use a backbone with parameters or set strategy.include_heads=true",
            )

    # -- the hooks -------------------------------------------------------------------------
    def penalty(self, net: nn.Module) -> Tensor:
        if self.consolidated.empty or self.lambda_ == 0:
            return torch.zeros((), device=device_of(net))
        params = self.protected(net)
        return 0.5 * self.lambda_ * self.consolidated.penalty(params)

    def on_task_end(self, net: nn.Module, task_id: int, dataloader: Iterable[Batch]) -> None:
        params = self.protected(net)
        omega = {n: w.detach().clone() for n, w in self.compute_importance(net, task_id, dataloader, params).items()}
        self.last_importance = omega
        self.consolidated.add(omega, params)

    def compute_importance(
        self, net: nn.Module, task_id: int, dataloader: Iterable[Batch], params: dict[str, nn.Parameter]
    ) -> dict[str, Tensor]:
        """This task's Ω (≥ 0, one tensor per protected parameter, same shape)."""
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {"consolidated": self.consolidated.state_dict(), "last_importance": self.last_importance}

    def load_state_dict(self, state: dict) -> None:
        self.consolidated.load_state_dict(state["consolidated"])
        self.last_importance = state["last_importance"]
