"""MAS (Aljundi et al. 2018): Ω = mean over examples of |∂‖f(x)‖²₂ / ∂θ| (no labels needed)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from retentive.data.batch import Batch
from retentive.errors import ConfigError
from retentive.strategies.base import device_of
from retentive.strategies.distributed import all_reduce_sums, local_batches, world_size
from retentive.strategies.importance import ImportanceStrategy
from retentive.strategies.per_sample import per_sample_power_sums


class MAS(ImportanceStrategy):
    """Sensitivity of the squared L2 norm of the logits, per example (exact, not per batch).

    Like Aljundi et al., Ω accumulates over tasks and the anchor is the latest parameters
    (`consolidation: online`, γ = 1). Their penalty is λ_MAS·Σ Ω (θ − θ*)², i.e. our λ = 2·λ_MAS.
    """

    default_mode = "online"

    def __init__(
        self,
        lambda_: float = 1.0,
        num_examples: int | None = None,
        include_heads: bool = False,
        consolidation: str | None = None,
        gamma: float = 1.0,
    ) -> None:
        super().__init__(lambda_, include_heads, consolidation, gamma)
        if num_examples is not None and num_examples < 1:
            raise ConfigError("strategy.num_examples", f"must be >= 1 or null, got {num_examples}")
        self.num_examples = num_examples

    def compute_importance(
        self, net: nn.Module, task_id: int, dataloader: Iterable[Batch], params: dict[str, nn.Parameter]
    ) -> dict[str, Tensor]:
        limit = None if self.num_examples is None else -(-self.num_examples // world_size())
        sums = {n: torch.zeros_like(p) for n, p in params.items()}
        seen = 0
        was_training = net.training
        net.eval()
        try:
            for batch in local_batches(dataloader):
                batch = Batch.of(batch)
                x, t = batch.x.to(device_of(net)), batch.t.to(device_of(net))
                if limit is not None:
                    if seen >= limit:
                        break
                    x, t = x[: limit - seen], t[: limit - seen]

                def squared_norm(x: Tensor = x, t: Tensor = t) -> Tensor:
                    logits = net(x, t)
                    return logits.masked_fill(torch.isinf(logits), 0.0).square().sum(1)

                per_sample_power_sums(net, params, squared_norm, lambda out: torch.ones_like(out)[None], 1, sums)
                seen += len(x)
        finally:
            net.train(was_training)
        sums, seen = all_reduce_sums(sums, seen)
        return {n: s / max(seen, 1) for n, s in sums.items()}
