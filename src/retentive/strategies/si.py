"""Synaptic Intelligence (Zenke et al. 2017): Ω from each parameter's share of the loss decrease."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from retentive.data.batch import Batch
from retentive.errors import ConfigError
from retentive.strategies.tracking import StepTracker


class SI(StepTracker):
    """Path integral ω = −Σ_steps g·Δθ over a task, Ω_t = max(ω, 0) / (Δ_task² + ξ).

    g is the gradient of the training loss (penalty included, as in van de Ven's implementation)
    saved after backward into a buffer on the model's device. Ω accumulates over tasks and the
    anchor is the latest task's parameters (`consolidation: online`, γ = 1). Zenke's penalty is
    c·Σ Ω (θ − θ*)², i.e. our λ = 2c. Negative ω (a parameter whose moves raised the loss) is
    clipped to 0 so the penalty stays a proper quadratic.
    """

    default_mode = "online"

    def __init__(
        self,
        lambda_: float = 1.0,
        damping: float = 0.1,
        include_heads: bool = False,
        consolidation: str | None = None,
        gamma: float = 1.0,
    ) -> None:
        super().__init__(lambda_, include_heads, consolidation, gamma)
        if not damping > 0:
            raise ConfigError("strategy.damping", f"ξ must be > 0, got {damping}", "Zenke et al. use 0.1 or 1e-3")
        self.damping = float(damping)
        self.grads: dict[str, Tensor] = {}

    def initial_state(self, param: Tensor) -> dict[str, Tensor]:
        return {"omega": torch.zeros_like(param)}

    @torch.no_grad()
    def on_after_backward(self, net: nn.Module, batch: Batch) -> None:
        for name, param in self.protected(net).items():
            if param.grad is None:
                continue
            if name not in self.grads:
                self.grads[name] = torch.zeros_like(param)
            self.grads[name].copy_(param.grad)

    def track(self, name: str, param: Tensor, delta: Tensor) -> None:
        if name in self.grads:
            self.state[name]["omega"].addcmul_(self.grads[name], delta, value=-1.0)

    def finish(self, name: str, param: Tensor) -> Tensor:
        change = param - self.start[name]
        return self.state[name]["omega"].clamp_min(0) / (change.square() + self.damping)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "grads": self.grads}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.grads = state["grads"]
