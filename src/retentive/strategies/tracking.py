"""StepTracker: importance strategies that watch every optimizer step of a task.

Keeps a snapshot of the protected parameters at the task start and after the last step (copies on
the model's device, updated in place: no per-step allocation or CPU copy), and hands each step's
update Δθ to `track`. Subclasses turn what they tracked into Ω at the task end.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from retentive.data.batch import Batch
from retentive.strategies.importance import ImportanceStrategy


class StepTracker(ImportanceStrategy):
    """Calls `track(name, param, delta)` after every optimizer step of the current task."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.start: dict[str, Tensor] = {}
        self.previous: dict[str, Tensor] = {}
        self.state: dict[str, dict[str, Tensor]] = {}

    def on_task_start(self, net: nn.Module, task_id: int) -> None:
        params = self.protected(net)
        self.start = {n: p.detach().clone() for n, p in params.items()}
        self.previous = {n: p.detach().clone() for n, p in params.items()}
        self.state = {n: self.initial_state(p) for n, p in params.items()}

    def initial_state(self, param: Tensor) -> dict[str, Tensor]:
        """Per-parameter buffers for this task (zeros by default)."""
        return {}

    @torch.no_grad()
    def on_train_batch_end(self, net: nn.Module, batch: Batch, logits: Tensor) -> None:
        if not self.previous:  # trained without on_task_start (e.g. a bare Trainer): start now
            self.on_task_start(net, -1)
            return
        for name, param in self.protected(net).items():
            delta = param.detach() - self.previous[name]
            self.track(name, param, delta)
            self.previous[name].copy_(param.detach())

    def track(self, name: str, param: Tensor, delta: Tensor) -> None:
        """Record one step's update of parameter `name`."""

    def compute_importance(
        self, net: nn.Module, task_id: int, dataloader: Iterable[Batch], params: dict[str, nn.Parameter]
    ) -> dict[str, Tensor]:
        return {n: self.finish(n, p.detach()) for n, p in params.items()}

    def finish(self, name: str, param: Tensor) -> Tensor:
        raise NotImplementedError

    def state_dict(self) -> dict:
        """Consolidated Ω plus the running task's snapshots and buffers (so a task resumes mid-way)."""
        return {**super().state_dict(), "start": self.start, "previous": self.previous, "state": self.state}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.start, self.previous, self.state = state["start"], state["previous"], state["state"]
