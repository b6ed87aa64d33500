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
from retentive.data.stream import TaskStream
from retentive.data.task_dataset import TaskDataset
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


def padded_distillation(student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
    """`distillation` with the student's softmax over more units than the teacher's: the teacher's
    probabilities fill the first `teacher.shape[1]` columns and 0 the rest (van de Ven & Tolias's
    `loss_fn_kd`, Class-IL: old classes from the teacher, the current task's classes at 0), so the
    term also pulls the new classes' scores down on the current inputs."""
    log_p = F.log_softmax(teacher / temperature, dim=1)
    log_q = F.log_softmax(student / temperature, dim=1)[:, : teacher.shape[1]]
    return temperature**2 * (log_p.exp() * (log_p - log_q)).sum(1).mean()


BALANCES = ("fixed", "by_task")
STUDENT_UNITS = ("old", "active")


class LwF(Strategy):
    """Loss `alpha · Σ_old distillation(student, teacher)` on the current batch's inputs.

    The teacher is the net as it was when the current task started. Task-IL (a multi-head net):
    one term per earlier task's head. One shared head (Class-IL, Domain-IL): one term over the
    output units of the classes seen in earlier tasks (recorded at each task end; in Domain-IL
    every task uses every unit, so that is all of them).

    van de Ven & Tolias (2019)'s form, whose numbers Hsu et al. (2018) also quote: `balance="by_task"`
    weighs task t (1-based) as (1/t) · task loss + (1 - 1/t) · alpha · distillation, the distillation
    averaged (not summed) over earlier heads; `student_units="active"` (one shared head) takes the
    student's softmax over every class seen so far, the current task's included, against the
    teacher's old-class probabilities padded with 0 (`padded_distillation`).
    """

    def __init__(self, alpha: float = 1.0, temperature: float = 2.0, balance: str = "fixed",
                 student_units: str = "old") -> None:
        if not isinstance(alpha, int | float) or not alpha >= 0:
            raise ConfigError("strategy.alpha", f"must be a number >= 0, got {alpha!r}", "the distillation weight")
        if not isinstance(temperature, int | float) or not temperature > 0:
            raise ConfigError("strategy.temperature", f"must be a number > 0, got {temperature!r}",
                              "2 as in Li & Hoiem 2017 and van de Ven et al.")
        if balance not in BALANCES:
            raise ConfigError("strategy.balance", f"'{balance}' is not a balance",
                              "fixed: task loss + alpha * distillation; by_task: van de Ven's 1/t weighting")
        if student_units not in STUDENT_UNITS:
            raise ConfigError("strategy.student_units", f"'{student_units}' is not a choice",
                              "old: both softmaxes over the old classes; active: the student's over every class seen")
        self.alpha = float(alpha)
        self.temperature = float(temperature)
        self.balance, self.student_units = balance, student_units
        self.teacher = Teacher()
        self.seen_classes: set[int] = set()  # labels of the tasks finished so far
        self.current_classes: set[int] = set()  # labels of the task being trained (from train_dataset)
        self.task = 0

    @property
    def task_loss_weight(self) -> float:  # type: ignore[override]
        """1/t for task t (1-based) under `balance="by_task"`, else 1: the module's CE weight."""
        return 1.0 / (self.task + 1) if self.balance == "by_task" else 1.0

    def train_dataset(self, task_id: int, stream: TaskStream) -> TaskDataset:
        data = stream.train(task_id)
        self.current_classes = set(torch.unique(data.labels).tolist())
        return data

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
        weight = self.alpha * (1.0 - self.task_loss_weight if self.balance == "by_task" else 1.0)
        if getattr(net, "multihead", False):
            return weight * self._per_head(net, batch)
        old_units = sorted(self.seen_classes)
        units = torch.tensor(old_units, device=logits.device)
        old = self.teacher(batch.x, batch.t)[:, units]
        if self.student_units == "active":
            active = old_units + sorted(self.current_classes - self.seen_classes)
            return weight * padded_distillation(logits[:, torch.tensor(active, device=logits.device)], old,
                                                self.temperature)
        return weight * distillation(logits[:, units], old, self.temperature)

    def _per_head(self, net: nn.Module, batch: Batch) -> Tensor:
        """Σ_{j < task} distillation on head j: one backbone pass per net, one head pass per task."""
        features, old_features = net.features(batch.x), self.teacher.features(batch.x)
        total = torch.zeros((), device=batch.x.device)
        for j in range(self.task):
            t = torch.full_like(batch.t, j)
            total = total + distillation(net.head_logits(features, t), self.teacher.head_logits(old_features, t),
                                         self.temperature)
        return total / self.task if self.balance == "by_task" else total

    def state_dict(self) -> dict:
        return {"teacher": self.teacher.state_dict(), "seen_classes": sorted(self.seen_classes), "task": self.task}

    def load_state_dict(self, state: dict) -> None:
        self.teacher.load_state_dict(state["teacher"])
        self.seen_classes = set(state["seen_classes"])
        self.task = int(state["task"])
