"""Early stopping on the current task's validation loss, optionally restoring the best weights.

CDEP's authors stop when the held-out loss has not improved for more than `patience` epochs.
Their ColorMNIST script reloads the best weights before testing; their DecoyMNIST script tests the
last model (`restore_best: false` reproduces that choice). The restore happens at the end of the
task's `fit`, before the runner tests every task, so the accuracy matrix row is measured on the restored net.
"""

from __future__ import annotations

import copy
import math

import lightning as L
import torch

from retentive.callbacks.continual import ContinualCallback
from retentive.errors import ConfigError


class EarlyStoppingRestore(ContinualCallback):
    """Stop a task's training once `val/loss/task<t>` has not improved for more than `patience`
    epochs (t = the task being trained); with `restore_best`, load the best epoch's weights back."""

    def __init__(self, patience: int = 2, min_delta: float = 0.0, restore_best: bool = True) -> None:
        if patience < 0 or min_delta < 0:
            raise ConfigError("callbacks.early_stopping", f"patience {patience} / min_delta {min_delta} must be >= 0")
        self.patience = patience
        self.min_delta = min_delta
        self.restore_best = restore_best
        self._reset()
        self.history: list[tuple[int, float]] = []  # (task, val loss) per epoch, for logs and tests

    def _reset(self) -> None:
        self.best_loss = math.inf
        self.best_epoch = -1
        self.bad_epochs = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.stopped = False

    def on_task_start(self, trainer: L.Trainer, module: L.LightningModule, task: int) -> None:
        self._reset()
        trainer.should_stop = False

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self.stopped:  # resumed from a checkpoint written after this task had already stopped
            trainer.should_stop = True

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        task = module.current_task
        value = trainer.callback_metrics.get(f"val/loss/task{task}")
        if value is None:
            raise ConfigError("callbacks.early_stopping", f"no val/loss/task{task} was logged",
                              "keep evaluation.split=val and dataset.val_fraction > 0")
        loss = float(value)
        self.history.append((task, loss))
        if loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_epoch, self.bad_epochs = loss, trainer.current_epoch, 0
            if self.restore_best:
                self.best_state = copy.deepcopy(module.net.state_dict())
        else:
            self.bad_epochs += 1
            if self.bad_epochs > self.patience:
                self.stopped = True
                trainer.should_stop = True

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self.restore_best and self.best_state is not None:
            module.net.load_state_dict(self.best_state)

    def state_dict(self) -> dict:
        return {"best_loss": self.best_loss, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs,
                "best_state": self.best_state, "stopped": self.stopped, "history": list(self.history)}

    def load_state_dict(self, state: dict) -> None:
        self.best_loss, self.best_epoch = state["best_loss"], state["best_epoch"]
        self.bad_epochs, self.best_state = state["bad_epochs"], state["best_state"]
        self.stopped, self.history = state["stopped"], [tuple(h) for h in state["history"]]
