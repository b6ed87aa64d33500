"""ExplanationCutoff: the explanation penalty for the first `steps` training steps of every task only.

An ablation that asks whether a penalty still acts later in training: if a run cut off at step N ends
where the fully penalised run ends, nothing after step N came from the penalty. The CDEP authors'
ColorMNIST protocol is the case in point (docs/reproductions.md): their penalty is satisfied by a
shift of all logits within ~6 steps, and a cutoff at 10 steps reproduces seeds 0-9's test accuracies
within 0.02 points in about a tenth of the time.
"""

from __future__ import annotations

from typing import Any

import lightning as L

from retentive.callbacks.continual import ContinualCallback
from retentive.errors import ConfigError, require


class ExplanationCutoff(ContinualCallback):
    """Sets `explanation.weight` to 0 from the task's `steps`-th step on; restores it for the next task."""

    def __init__(self, steps: int) -> None:
        require(isinstance(steps, int) and steps >= 0, "callbacks.explanation_cutoff.steps",
                f"{steps!r} must be an integer >= 0", "e.g. 10")
        self.steps = steps
        self.weight: float | None = None  # the configured weight, restored at every task start
        self.task_start = 0  # the global step the current task started at

    def on_fit_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if getattr(module, "explanation", None) is None:
            raise ConfigError("callbacks.explanation_cutoff", "needs an explanation penalty",
                              "set explanation=cdep (or another), or drop the callback")
        if self.weight is None:
            self.weight = module.explanation.weight

    def on_task_start(self, trainer: L.Trainer, module: L.LightningModule, task: int) -> None:
        self.task_start = trainer.global_step
        if self.weight is not None:
            module.explanation.weight = self.weight

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        on = trainer.global_step - self.task_start < self.steps
        module.explanation.weight = self.weight if on else 0.0

    def on_fit_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        module.explanation.weight = self.weight

    def state_dict(self) -> dict[str, Any]:
        return {"weight": self.weight, "task_start": self.task_start}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.weight, self.task_start = state["weight"], state["task_start"]
