"""Quadratic penalties over many tasks in O(#params) memory.

Σ_t Ω_t (θ − θ_t)² = A (θ − B/A)² + const, with A = Σ_t Ω_t and B = Σ_t Ω_t θ_t, so one
importance tensor and one anchor per parameter replace one pair per task, with the same value and
gradient. `online` mode is Schwarz et al. (2018)'s: A ← γA + Ω_t and the anchor is the latest θ_t
(also how SI and MAS keep their importances).
"""

from __future__ import annotations

import torch
from torch import Tensor

MODES = ("per_task", "online")


class Consolidation:
    """Holds A (summed importance) and the anchor m per parameter; penalty Σ A (θ − m)² + const."""

    def __init__(self, mode: str = "per_task", gamma: float = 1.0) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown consolidation mode {mode!r}; expected one of {MODES}")
        self.mode = mode
        self.gamma = gamma
        self.importance: dict[str, Tensor] = {}
        self.anchor: dict[str, Tensor] = {}
        self.const = 0.0  # Σ_t Ω_t θ_t² − B²/A (float64), so the value equals the per-task sum

    @property
    def empty(self) -> bool:
        return not self.importance

    @torch.no_grad()
    def add(self, omega: dict[str, Tensor], params: dict[str, Tensor]) -> None:
        """Fold in a task's importance `omega` with anchor `params` (both copied)."""
        const = self.gamma * self.const
        for name, new_omega in omega.items():
            theta = params[name].detach().to(torch.float64)
            new_omega = new_omega.detach().to(torch.float64)
            if name not in self.importance or self.mode == "online":
                old_a = self.importance[name].double() * self.gamma if name in self.importance else 0.0
                total = old_a + new_omega
                self.importance[name] = total.to(params[name].dtype).clone()
                self.anchor[name] = params[name].detach().clone()
                continue
            old_a = self.importance[name].double() * self.gamma
            old_m = self.anchor[name].double()
            total = old_a + new_omega
            weighted = old_a * old_m + new_omega * theta
            mean = torch.where(total > 0, weighted / total.clamp_min(1e-300), theta)
            const += float((old_a * old_m.square() + new_omega * theta.square() - total * mean.square()).sum())
            self.importance[name] = total.to(params[name].dtype)
            self.anchor[name] = mean.to(params[name].dtype)
        self.const = const if self.mode == "per_task" else 0.0

    def penalty(self, params: dict[str, Tensor]) -> Tensor:
        """Σ A (θ − m)² + const over the consolidated parameters (differentiable in θ)."""
        terms = [(self.importance[n] * (params[n] - self.anchor[n]).square()).sum() for n in self.importance]
        return torch.stack(terms).sum() + self.const

    def state_dict(self) -> dict:
        return {"mode": self.mode, "gamma": self.gamma, "importance": self.importance,
                "anchor": self.anchor, "const": self.const}

    def load_state_dict(self, state: dict) -> None:
        self.mode, self.gamma = state["mode"], state["gamma"]
        self.importance, self.anchor, self.const = state["importance"], state["anchor"], state["const"]
