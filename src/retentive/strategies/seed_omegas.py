"""The seed project's cheap importance measures, computed from snapshots (never live tensors).

- SignFlips:         Ω = 1 / (1 + number of steps whose update reversed the previous one's sign)
- MomentumReversals: Ω = 1 / (1 + steps whose update opposed the running mean of updates (β))
- WeightChange:      Ω = Σ_steps |Δθ| over the task (path length: parameters that moved carry the task)
- WeightMagnitude:   Ω = |θ| at the task end
- RandomImportance:  Ω ~ U(0, 1) (control: importance-based methods should beat it)
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from retentive.data.batch import Batch
from retentive.errors import ConfigError
from retentive.strategies.importance import ImportanceStrategy
from retentive.strategies.tracking import StepTracker


class SignFlips(StepTracker):
    """Parameters whose updates keep flipping sign are noise-fitting, so matter little."""

    def initial_state(self, param: Tensor) -> dict[str, Tensor]:
        return {"flips": torch.zeros_like(param), "last": torch.zeros_like(param)}

    def track(self, name: str, param: Tensor, delta: Tensor) -> None:
        state = self.state[name]
        state["flips"] += (delta * state["last"] < 0).to(param.dtype)
        state["last"].copy_(torch.where(delta != 0, delta, state["last"]))

    def finish(self, name: str, param: Tensor) -> Tensor:
        return 1.0 / (1.0 + self.state[name]["flips"])


class MomentumReversals(StepTracker):
    """Like SignFlips, but against an exponential mean of past updates (robust to one noisy step)."""

    def __init__(self, lambda_: float = 1.0, beta: float = 0.9, include_heads: bool = False,
                 consolidation: str | None = None, gamma: float = 1.0) -> None:
        super().__init__(lambda_, include_heads, consolidation, gamma)
        if not 0.0 <= beta < 1.0:
            raise ConfigError("strategy.beta", f"momentum {beta} is outside [0, 1)")
        self.beta = beta

    def initial_state(self, param: Tensor) -> dict[str, Tensor]:
        return {"reversals": torch.zeros_like(param), "momentum": torch.zeros_like(param)}

    def track(self, name: str, param: Tensor, delta: Tensor) -> None:
        state = self.state[name]
        state["reversals"] += (delta * state["momentum"] < 0).to(param.dtype)
        state["momentum"].mul_(self.beta).add_(delta, alpha=1.0 - self.beta)

    def finish(self, name: str, param: Tensor) -> Tensor:
        return 1.0 / (1.0 + self.state[name]["reversals"])


class WeightChange(StepTracker):
    """Total distance each parameter travelled during the task."""

    def initial_state(self, param: Tensor) -> dict[str, Tensor]:
        return {"path": torch.zeros_like(param)}

    def track(self, name: str, param: Tensor, delta: Tensor) -> None:
        self.state[name]["path"] += delta.abs()

    def finish(self, name: str, param: Tensor) -> Tensor:
        return self.state[name]["path"].clone()


class WeightMagnitude(ImportanceStrategy):
    """Large weights are assumed to matter."""

    def compute_importance(
        self, net: nn.Module, task_id: int, dataloader: Iterable[Batch], params: dict[str, nn.Parameter]
    ) -> dict[str, Tensor]:
        return {n: p.detach().abs().clone() for n, p in params.items()}


class RandomImportance(ImportanceStrategy):
    """Uniform random Ω (seeded): the control that tells whether an importance measure helps."""

    def __init__(self, lambda_: float = 1.0, seed: int = 0, include_heads: bool = False,
                 consolidation: str | None = None, gamma: float = 1.0) -> None:
        super().__init__(lambda_, include_heads, consolidation, gamma)
        self.seed = seed

    def compute_importance(
        self, net: nn.Module, task_id: int, dataloader: Iterable[Batch], params: dict[str, nn.Parameter]
    ) -> dict[str, Tensor]:
        generator = torch.Generator().manual_seed(self.seed * 1000 + task_id)
        return {n: torch.rand(p.shape, generator=generator).to(p.device) for n, p in params.items()}
