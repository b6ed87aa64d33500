"""ER: Experience Replay with a reservoir buffer (Chaudhry et al. 2019, "On tiny episodic memories").

Every step trains on the current batch plus a batch drawn from a small memory of the stream seen
so far; the memory is filled by reservoir sampling, so it needs no task boundaries and holds an
(approximately) uniform sample of everything seen under a fixed total budget.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from retentive.data.batch import Batch
from retentive.errors import ConfigError
from retentive.strategies.base import Strategy, device_of
from retentive.strategies.buffer import ReservoirBuffer


class ER(Strategy):
    """Loss `replay_weight · CE(net(x_b, t_b), y_b)` on a replay batch from the buffer, every step.

    `replay_batch_size` null replays as many samples as the current batch holds: old and new data
    weigh 1:1 in every step, the ratio Hsu et al. (2018) use for their rehearsal baseline (they
    repeat the memory until it matches the task's data in one shuffled set; we mix per step, as
    Chaudhry et al. do). The buffer takes the current stream batch after each optimizer step
    (never replayed samples), and is kept on the CPU; only the drawn batch moves to the net's device.
    Under DDP each process keeps a buffer of its own shards of the stream. `fill="task_end"` instead
    offers each finished task to the buffer at its end, so a task replays only earlier tasks (Hsu et
    al.'s naive rehearsal; with `buffer_mode="task_balanced"`, an equal random share per task).
    """

    def __init__(
        self,
        buffer_size: int = 200,
        replay_batch_size: int | None = None,
        replay_weight: float = 1.0,
        buffer_mode: str = "reservoir",
        seed: int = 0,
        fill: str = "stream",
    ) -> None:
        if replay_batch_size is not None and (not isinstance(replay_batch_size, int) or replay_batch_size < 1):
            raise ConfigError("strategy.replay_batch_size", f"must be an integer >= 1 or null, got {replay_batch_size!r}",
                              "null replays as many samples as the current batch holds")
        if not isinstance(replay_weight, int | float) or not replay_weight >= 0:
            raise ConfigError("strategy.replay_weight", f"must be a number >= 0, got {replay_weight!r}")
        if fill not in ("stream", "task_end"):
            raise ConfigError("strategy.fill", f"'{fill}' is not a fill", "stream: every step's batch "
                              "(Chaudhry et al.); task_end: each finished task, in random order (Hsu et al.)")
        self.buffer = ReservoirBuffer(buffer_size, seed, buffer_mode)
        self.replay_batch_size = replay_batch_size
        self.replay_weight = float(replay_weight)
        self.fill = fill

    def loss(self, net: nn.Module, batch: Batch, logits: Tensor) -> Tensor:
        if len(self.buffer) == 0 or self.replay_weight == 0:
            return torch.zeros((), device=device_of(net))
        replay = self.buffer.sample(self.replay_batch_size or len(batch)).to(device_of(net))
        return self.replay_weight * F.cross_entropy(net(replay.x, replay.t), replay.y)

    def on_train_batch_end(self, net: nn.Module, batch: Batch, logits: Tensor) -> None:
        if self.fill == "stream":
            self.buffer.add(batch)

    def on_task_end(self, net: nn.Module, task_id: int, batches: Iterable[Batch]) -> None:
        if self.fill == "task_end":  # the whole task in the buffer's own random order (same on every process)
            task = Batch.cat([Batch.of(batch) for batch in batches])
            self.buffer.add(task.select(torch.randperm(len(task), generator=self.buffer.generator)))

    def state_dict(self) -> dict:
        return {"buffer": self.buffer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.buffer.load_state_dict(state["buffer"])
