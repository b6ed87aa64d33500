"""lint's phase schedule: epochs of task loss only, then explanation penalty only, then task loss only.

"Interpretability tools as feedback loops" trains the classifier first, then corrects where it
looks with the CAM loss alone, then recovers accuracy with the task loss alone. The schedule runs
within every task of a sequence (it restarts when `trainer.fit` starts the next task); epochs past
the three phases stay in the last one.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import Callback

from retentive.errors import ConfigError


class PhaseSchedule(Callback):
    """Sets `explanation.weight` and the module's `task_loss_weight` at every epoch start."""

    def __init__(self, task_epochs: int = 1, penalty_epochs: int = 1, final_epochs: int = 1) -> None:
        if min(task_epochs, penalty_epochs, final_epochs) < 0:
            raise ConfigError("callbacks.phase_schedule", "epochs per phase must be >= 0")
        self.task_epochs = task_epochs
        self.penalty_epochs = penalty_epochs
        self.final_epochs = final_epochs
        self.penalty_weight: float | None = None
        self.task_start_epoch = 0
        self.task: int | None = None  # the module's current task at the last fit start
        self._fitting = False
        self._resumed_task: int | None = None  # a checkpoint written inside this task's fit was loaded
        self.history: list[tuple[int, str]] = []  # (epoch, phase), for logs and tests

    def phase(self, epoch_in_task: int) -> str:
        if epoch_in_task < self.task_epochs:
            return "task"
        if epoch_in_task < self.task_epochs + self.penalty_epochs:
            return "penalty"
        return "final"

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if getattr(pl_module, "explanation", None) is None:
            raise ConfigError("callbacks.phase_schedule", "needs an explanation penalty",
                              "set explanation=camloss (or another), or drop the callback")
        if self.penalty_epochs and not hasattr(pl_module, "task_loss_weight"):
            raise ConfigError("callbacks.phase_schedule",
                              f"penalty-only epochs need {type(pl_module).__name__}.task_loss_weight",
                              "set penalty_epochs=0")
        if self.penalty_weight is None:
            self.penalty_weight = pl_module.explanation.weight

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        task = getattr(pl_module, "current_task", None)
        if self._resumed_task is None or self._resumed_task != task:  # a resumed fit keeps the task's start
            self.task_start_epoch = trainer.current_epoch
        self.task, self._resumed_task, self._fitting = task, None, True

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        phase = self.phase(trainer.current_epoch - self.task_start_epoch)
        pl_module.explanation.weight = self.penalty_weight if phase == "penalty" else 0.0
        if hasattr(pl_module, "task_loss_weight"):
            pl_module.task_loss_weight = 0.0 if phase == "penalty" else 1.0
        self.history.append((trainer.current_epoch, phase))

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._fitting = False
        pl_module.explanation.weight = self.penalty_weight
        if hasattr(pl_module, "task_loss_weight"):
            pl_module.task_loss_weight = 1.0

    def state_dict(self) -> dict:
        """The running task and its first epoch, and the configured penalty weight (resume mid-task)."""
        return {"task": self.task, "mid_task": self._fitting, "task_start_epoch": self.task_start_epoch,
                "penalty_weight": self.penalty_weight}

    def load_state_dict(self, state: dict) -> None:
        self.task, self.task_start_epoch = state["task"], state["task_start_epoch"]
        self.penalty_weight = state["penalty_weight"]
        self._resumed_task = state["task"] if state["mid_task"] else None
