"""L2 transfer: Ω = 1 for every parameter (the baseline that shows whether importances matter)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from retentive.strategies.importance import ImportanceStrategy

if TYPE_CHECKING:
    from retentive.module import ContinualModule


class L2(ImportanceStrategy):
    """Penalty (λ/2)·Σ_t ‖θ − θ_t‖²: every parameter equally anchored."""

    def compute_importance(
        self, module: ContinualModule, task_id: int, dataloader: DataLoader, params: dict[str, nn.Parameter]
    ) -> dict[str, Tensor]:
        return {n: torch.ones_like(p) for n, p in params.items()}
