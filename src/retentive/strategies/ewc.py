"""EWC (Kirkpatrick et al. 2017) and online EWC (Schwarz et al. 2018): Ω = diagonal Fisher."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from retentive.data.batch import Batch
from retentive.errors import ConfigError
from retentive.strategies.distributed import all_reduce_sums, local_batches, world_size
from retentive.strategies.fisher import FISHER_KINDS, fisher_sums
from retentive.strategies.importance import ImportanceStrategy


class EWC(ImportanceStrategy):
    """Penalty (λ/2)·Σ_t Σ_i F_t,i (θ_i − θ_t,i)², F_t the mean diagonal Fisher of task t.

    `fisher` picks the estimator (see `fisher.py`); `num_examples` caps the examples used per task
    (None: the whole task), split evenly over DDP processes and all-reduced.
    """

    def __init__(
        self,
        lambda_: float = 1.0,
        fisher: str = "exact",
        num_examples: int | None = None,
        include_heads: bool = False,
        consolidation: str | None = None,
        gamma: float = 1.0,
        seed: int = 0,
    ) -> None:
        super().__init__(lambda_, include_heads, consolidation, gamma)
        if fisher not in FISHER_KINDS:
            raise ConfigError("strategy.fisher", f"unknown Fisher kind {fisher!r}", f"choose one of {', '.join(FISHER_KINDS)}")
        if num_examples is not None and num_examples < 1:
            raise ConfigError("strategy.num_examples", f"must be >= 1 or null, got {num_examples}")
        self.fisher = fisher
        self.num_examples = num_examples
        self.seed = seed

    def compute_importance(
        self, net: nn.Module, task_id: int, dataloader: Iterable[Batch], params: dict[str, nn.Parameter]
    ) -> dict[str, Tensor]:
        limit = None if self.num_examples is None else -(-self.num_examples // world_size())
        generator = torch.Generator().manual_seed(self.seed * 1000 + task_id)
        sums, count = fisher_sums(net, params, local_batches(dataloader), self.fisher, limit, generator)
        sums, count = all_reduce_sums(sums, count)
        return {n: s / max(count, 1) for n, s in sums.items()}


class OnlineEWC(EWC):
    """Online EWC: F ← γF + F_t, anchored at the latest task's parameters (one penalty term)."""

    default_mode = "online"
