"""DER and DER++: Dark Experience Replay (Buzzega et al. 2020, NeurIPS, arXiv 2004.07211).

Like ER, a reservoir memory of the stream; unlike ER, each stored sample keeps the logits the net
gave it when it was seen, and the net is asked to keep giving them (an MSE on logits: distillation
from the net's own past, sampled along the whole trajectory). DER++ adds ER's cross-entropy on the
stored labels of a second, independently drawn replay batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from retentive.data.batch import Batch
from retentive.errors import ConfigError, weight_value
from retentive.strategies.base import Strategy, device_of
from retentive.strategies.buffer import ReservoirBuffer


def logit_mse(current: Tensor, stored: Tensor) -> Tensor:
    """Mean squared difference over the entries finite in both: multi-head (Task-IL) nets pad
    smaller heads with -inf, and those entries are no output at all. With no padding this is
    `F.mse_loss(current, stored)`, the authors' loss (mean over samples and output units)."""
    finite = torch.isfinite(current) & torch.isfinite(stored)
    diff = torch.where(finite, current - stored, torch.zeros_like(current))  # zero gradient on padding
    return diff.pow(2).sum() / finite.sum().clamp(min=1)


class DER(Strategy):
    """Loss `alpha · MSE(net(x_b, t_b), z_b)` on a replay batch (x_b, z_b) from the buffer, every step.

    z are the logits of the step in which the sample was seen (`on_train_batch_end` receives them,
    detached, computed before that step's optimizer update, as `outputs.data` in the authors'
    code). The buffer takes every stream batch after the step (reservoir sampling over the whole
    stream, `buffer_size` in total, kept on the CPU with its own seeded generator), so no task
    boundary is used. `replay_batch_size` null draws as many samples as the current batch holds.
    Under DDP each process keeps a buffer of its own shards of the stream (as ER).
    """

    def __init__(
        self,
        buffer_size: int = 200,
        alpha: float = 0.2,
        replay_batch_size: int | None = None,
        buffer_mode: str = "reservoir",
        seed: int = 0,
    ) -> None:
        if replay_batch_size is not None and (isinstance(replay_batch_size, bool)
                                              or not isinstance(replay_batch_size, int) or replay_batch_size < 1):
            raise ConfigError("strategy.replay_batch_size",
                              f"must be an integer >= 1 or null, got {replay_batch_size!r}",
                              "null replays as many samples as the current batch holds")
        self.alpha = weight_value("strategy.alpha", alpha, "the weight of the logit MSE")
        self.buffer = ReservoirBuffer(buffer_size, seed, buffer_mode)
        self.replay_batch_size = replay_batch_size

    def replay_size(self, batch: Batch) -> int:
        return self.replay_batch_size or len(batch)

    def loss(self, net: nn.Module, batch: Batch, logits: Tensor) -> Tensor:
        if len(self.buffer) == 0 or self.alpha == 0:
            return torch.zeros((), device=device_of(net))
        device = device_of(net)
        replay, extras = self.buffer.draw(self.replay_size(batch))
        replay = replay.to(device)
        return self.alpha * logit_mse(net(replay.x, replay.t), extras["logits"].to(device))

    def on_train_batch_end(self, net: nn.Module, batch: Batch, logits: Tensor) -> None:
        self.buffer.add(batch, logits=logits)

    def state_dict(self) -> dict:
        return {"buffer": self.buffer.state_dict()}  # samples, their logits (extras) and the RNG state

    def load_state_dict(self, state: dict) -> None:
        self.buffer.load_state_dict(state["buffer"])


class DERpp(DER):
    """DER plus `beta · CE(net(x_b', t_b'), y_b')` on a second replay batch, drawn independently of
    the first (the authors' `derpp.py` calls `buffer.get_data` twice)."""

    def __init__(
        self,
        buffer_size: int = 200,
        alpha: float = 0.2,
        beta: float = 1.0,
        replay_batch_size: int | None = None,
        buffer_mode: str = "reservoir",
        seed: int = 0,
    ) -> None:
        super().__init__(buffer_size, alpha, replay_batch_size, buffer_mode, seed)
        self.beta = weight_value("strategy.beta", beta, "the weight of the replayed cross-entropy")

    def loss(self, net: nn.Module, batch: Batch, logits: Tensor) -> Tensor:
        if len(self.buffer) == 0 or self.beta == 0 or self.alpha == 0:
            loss = super().loss(net, batch, logits)
            if len(self.buffer) == 0 or self.beta == 0:
                return loss
            replay = self.buffer.sample(self.replay_size(batch)).to(device_of(net))
            return loss + self.beta * F.cross_entropy(net(replay.x, replay.t), replay.y)
        # both terms: the two independent draws go through the net in one forward pass (same
        # values and gradients as two passes for nets without batch statistics, less overhead)
        device = device_of(net)
        first, extras = self.buffer.draw(self.replay_size(batch))
        second = self.buffer.sample(self.replay_size(batch))
        both = Batch.cat([first, second]).to(device)
        out = net(both.x, both.t)
        n = len(first)
        return (self.alpha * logit_mse(out[:n], extras["logits"].to(device))
                + self.beta * F.cross_entropy(out[n:], both.y[n:]))
