"""LwF: Learning without Forgetting (Li & Hoiem 2017).

No data of earlier tasks is kept: the net is instead asked to keep giving, on the *current* task's
inputs, the outputs that it gave for the earlier tasks before this task started (a frozen teacher).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from retentive.data.batch import Batch
from retentive.errors import ConfigError
from retentive.strategies.base import Strategy, device_of
from retentive.strategies.teacher import Teacher


def distillation(student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
    """T² · KL(softmax(teacher/T) ‖ softmax(student/T)), averaged over the batch.

    Only the columns where the teacher is finite count (multi-head nets pad smaller heads with
    -inf). KL differs from the soft cross-entropy of Li & Hoiem by the teacher's entropy, a
    constant: same gradients, but 0 when student and teacher agree. T² keeps the gradient scale
    independent of T (Hinton et al. 2015).
    """
    columns = torch.isfinite(teacher).all(0)
    log_p = F.log_softmax(teacher[:, columns] / temperature, dim=1)
    log_q = F.log_softmax(student[:, columns] / temperature, dim=1)
    return temperature**2 * F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)


class LwF(Strategy):
    """Loss `alpha · Σ_old distillation(student, teacher)` on the current batch's inputs.

    The teacher is the net as it was when the current task started. Task-IL (a multi-head net):
    one term per earlier task's head. One shared head (Class-IL, Domain-IL): one term over the
    output units of the classes seen in earlier tasks (recorded at each task end; in Domain-IL
    every task uses every unit, so that is all of them).
    """

    def __init__(self, alpha: float = 1.0, temperature: float = 2.0) -> None:
        if not isinstance(alpha, int | float) or not alpha >= 0:
            raise ConfigError("strategy.alpha", f"must be a number >= 0, got {alpha!r}", "the distillation weight")
        if not isinstance(temperature, int | float) or not temperature > 0:
            raise ConfigError("strategy.temperature", f"must be a number > 0, got {temperature!r}",
                              "2 as in Li & Hoiem 2017 and van de Ven et al.")
        self.alpha = float(alpha)
        self.temperature = float(temperature)
        self.teacher = Teacher()
        self.seen_classes: set[int] = set()  # labels of the tasks finished so far
        self.task = 0

    def setup(self, net: nn.Module) -> None:
        self.teacher.bind(net)

    def on_task_start(self, net: nn.Module, task_id: int) -> None:
        self.task = task_id
        if task_id > 0:
            self.teacher.snapshot(net)

    def on_task_end(self, net: nn.Module, task_id: int, batches: Iterable[Batch]) -> None:
        # from the task's whole training set, which every process iterates in full: all agree
        for batch in batches:
            self.seen_classes.update(torch.unique(Batch.of(batch).y).tolist())

    def loss(self, net: nn.Module, batch: Batch, logits: Tensor) -> Tensor:
        if not self.teacher or self.alpha == 0:
            return torch.zeros((), device=device_of(net))
        if getattr(net, "multihead", False):
            return self.alpha * self._per_head(net, batch)
        units = torch.tensor(sorted(self.seen_classes), device=logits.device)
        old = self.teacher(batch.x, batch.t)
        return self.alpha * distillation(logits[:, units], old[:, units], self.temperature)

    def _per_head(self, net: nn.Module, batch: Batch) -> Tensor:
        """Σ_{j < task} distillation on head j: one backbone pass per net, one head pass per task."""
        features, old_features = net.features(batch.x), self.teacher.features(batch.x)
        total = torch.zeros((), device=batch.x.device)
        for j in range(self.task):
            t = torch.full_like(batch.t, j)
            total = total + distillation(net.head_logits(features, t), self.teacher.head_logits(old_features, t),
                                         self.temperature)
        return total

    def state_dict(self) -> dict:
        return {"teacher": self.teacher.state_dict(), "seen_classes": sorted(self.seen_classes), "task": self.task}

    def load_state_dict(self, state: dict) -> None:
        self.teacher.load_state_dict(state["teacher"])
        self.seen_classes = set(state["seen_classes"])
        self.task = int(state["task"])
