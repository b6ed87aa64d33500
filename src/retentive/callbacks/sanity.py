"""NumericalSanity: warn when the training loss explodes without becoming NaN, when a penalty dwarfs
the task loss, or when an explanation penalty vanishes, so a run that "completes" on garbage numbers (or
without the penalty it was configured with) says so (log and results.json)."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import torch

from retentive.callbacks.continual import ContinualCallback
from retentive.callbacks.results import ContinualResults
from retentive.errors import require

log = logging.getLogger("retentive")


def strategy_knob(strategy: object) -> str:
    """The config key that scales the strategy's penalty (importance methods: lambda_; LwF, DER: alpha)."""
    for name in ("lambda_", "alpha"):
        if hasattr(strategy, name):
            return f"strategy.{name}"
    return "the strategy's weight"


class NumericalSanity(ContinualCallback):
    """Checks the loss terms the module keeps of each training step (`module.step_terms`).

    - growth: the total loss exceeds `growth_factor` times the task's first loss;
    - penalty: the strategy penalty or the weighted explanation loss exceeds `penalty_ratio` times the
      task loss (floored at `min_task_loss`, so a task loss near 0 does not make any penalty "dwarf" it);
    - explanation_vanished: the explanation loss falls below `vanish_ratio` times its first value on the
      task. From then on the penalty no longer shapes training; that is only right if the constraint is
      truly met (CDEP's share score is also met by a shift of all logits that changes no prediction: the
      CDEP authors' ColorMNIST penalty falls from 4 to below 1e-6 of that in 10 steps, docs/reproductions.md). 0: off.
    Each kind warns once per task (a log line and an entry of results.json `warnings`), naming the task,
    step, values and the knob to turn. Non-finite losses stay the module's error (`loss: non-finite`).
    """

    def __init__(self, growth_factor: float = 1e3, penalty_ratio: float = 1e3, every_n_steps: int = 1,
                 min_task_loss: float = 1e-2, vanish_ratio: float = 1e-6) -> None:
        require(growth_factor > 1, "callbacks.sanity.growth_factor", f"{growth_factor} must be > 1", "e.g. 1000")
        require(penalty_ratio > 0, "callbacks.sanity.penalty_ratio", f"{penalty_ratio} must be > 0", "e.g. 1000")
        require(every_n_steps >= 1, "callbacks.sanity.every_n_steps", f"{every_n_steps} must be >= 1", "e.g. 1")
        require(min_task_loss > 0, "callbacks.sanity.min_task_loss", f"{min_task_loss} must be > 0", "e.g. 0.01")
        require(0 <= vanish_ratio < 1, "callbacks.sanity.vanish_ratio", f"{vanish_ratio} must be in [0, 1)",
                "e.g. 1e-6; 0 turns the check off")
        self.growth_factor = float(growth_factor)
        self.penalty_ratio = float(penalty_ratio)
        self.every_n_steps = int(every_n_steps)
        self.min_task_loss = float(min_task_loss)
        self.vanish_ratio = float(vanish_ratio)
        self.first_loss: float | None = None  # the current task's first total loss
        self.first_explanation: float | None = None  # the current task's first (unweighted) explanation loss
        self.warned: list[list[Any]] = []     # [task, kind] already warned about
        self.warnings: list[dict[str, Any]] = []

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        results = next((cb for cb in trainer.callbacks if isinstance(cb, ContinualResults)), None)
        if results is not None:
            results.add_section("warnings", lambda: {"warnings": list(self.warnings)})

    def on_task_start(self, trainer: L.Trainer, module: L.LightningModule, task: int) -> None:
        self.first_loss = None
        self.first_explanation = None

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        terms = getattr(module, "step_terms", None)
        if not terms or (self.first_loss is not None and trainer.global_step % self.every_n_steps):
            return
        names = list(terms)
        values = dict(zip(names, torch.stack([terms[n].float() for n in names]).tolist(), strict=True))  # one sync
        loss = values["train/loss"]
        if not all(map(_finite, values.values())):
            return  # the module stops the run with its own one-line error
        explanation = values.get("train/explanation_loss")
        if self.first_explanation is None and explanation is not None and explanation > 0:
            self.first_explanation = explanation
        if self.first_loss is None:
            self.first_loss = loss
            return
        task, step = int(module.current_task), int(trainer.global_step) - 1  # numbered as the module does
        task_loss = max(values.get("train/task_loss", 0.0), self.min_task_loss)
        penalties = {strategy_knob(module.strategy): values.get("train/penalty", 0.0)}
        if "train/explanation_loss" in values and module.explanation is not None:
            penalties["explanation.weight"] = module.explanation.weight * values["train/explanation_loss"]
        knob, penalty = max(penalties.items(), key=lambda item: item[1])
        if penalty > self.penalty_ratio * task_loss:
            self._warn(trainer, task, "penalty", step, knob, loss, penalty, values.get("train/task_loss", 0.0),
                       f"penalty {penalty:.4g} is {penalty / task_loss:.3g}x the task loss "
                       f"{values.get('train/task_loss', 0.0):.4g} (limit {self.penalty_ratio:g}x)")
        if self.first_loss > 0 and loss > self.growth_factor * self.first_loss:
            growth_knob = knob if penalty > values.get("train/task_loss", 0.0) else "model.optimizer.lr"
            self._warn(trainer, task, "loss_growth", step, growth_knob, loss, penalty,
                       values.get("train/task_loss", 0.0),
                       f"loss {loss:.4g} is {loss / self.first_loss:.3g}x its first value {self.first_loss:.4g} "
                       f"on this task (limit {self.growth_factor:g}x)")
        if (self.vanish_ratio and explanation is not None and self.first_explanation
                and explanation < self.vanish_ratio * self.first_explanation):
            self._warn(trainer, task, "explanation_vanished", step, "explanation.weight", loss,
                       module.explanation.weight * explanation, values.get("train/task_loss", 0.0),
                       f"explanation loss {explanation:.3g} is below {self.vanish_ratio:g}x its first value "
                       f"{self.first_explanation:.4g} on this task: the penalty no longer shapes training",
                       advice="check the constraint is really met (explanation metrics, probes); a score that a "
                              "shared logit shift satisfies (CDEP's) can vanish without it")

    def _warn(self, trainer: L.Trainer, task: int, kind: str, step: int, knob: str, loss: float, penalty: float,
              task_loss: float, what: str, advice: str | None = None) -> None:
        if [task, kind] in self.warned:
            return
        self.warned.append([task, kind])
        message = f"task {task}, step {step}: {what}; {advice or f'lower {knob}'}"
        self.warnings.append({"kind": kind, "task": task, "step": step, "knob": knob, "loss": loss,
                              "task_loss": task_loss, "penalty": penalty, "message": message})
        if trainer.is_global_zero:
            log.warning("numerical sanity: %s", message)

    def state_dict(self) -> dict[str, Any]:
        return {"first_loss": self.first_loss, "first_explanation": self.first_explanation,
                "warned": [list(w) for w in self.warned],
                "warnings": [dict(w) for w in self.warnings]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.first_loss = state.get("first_loss")
        self.first_explanation = state.get("first_explanation")
        self.warned = [list(w) for w in state.get("warned", [])]
        self.warnings = [dict(w) for w in state.get("warnings", [])]


def _finite(value: float) -> bool:
    return value == value and abs(value) != float("inf")
