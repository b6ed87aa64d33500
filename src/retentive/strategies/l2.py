"""L2 transfer: Ω = 1 for every parameter (the baseline that shows whether importances matter)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from retentive.data.batch import Batch
from retentive.strategies.importance import ImportanceStrategy


class L2(ImportanceStrategy):
    """Penalty (λ/2)·Σ_t ‖θ − θ_t‖²: every parameter equally anchored."""

    def compute_importance(
        self, net: nn.Module, task_id: int, dataloader: Iterable[Batch], params: dict[str, nn.Parameter]
    ) -> dict[str, Tensor]:
        return {n: torch.ones_like(p) for n, p in params.items()}
