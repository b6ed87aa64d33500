"""The schema: what each config key may hold, matched by dotted-key pattern.

Patterns use `fnmatch` syntax on the dotted key (`*.lr` matches `model.optimizer.lr`); the first
matching rule applies. Kept as data so the docs' config reference can list the constraints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Lightning 2.x `Trainer(precision=...)` values
PRECISIONS = ("64", "64-true", "32", "32-true", "16", "16-mixed", "bf16", "bf16-mixed", "16-true", "bf16-true",
              "transformer-engine", "transformer-engine-float16")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")


@dataclass(frozen=True)
class Rule:
    """A value constraint: `kind` int | float | bool | str | choice | int_or_auto | interval."""

    pattern: str
    kind: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False    # low excluded
    high_open: bool = False   # high excluded
    nullable: bool = False
    choices: tuple[Any, ...] = ()
    meaning: str = ""

    def allowed(self) -> str:
        """What the rule allows, in words (for error lines and the docs)."""
        if self.kind == "choice":
            text = "one of " + ", ".join(map(str, self.choices))
        elif self.kind == "bool":
            text = "true or false"
        else:
            noun = {"int": "an integer", "float": "a number", "str": "a string",
                    "int_or_auto": "auto or an integer", "list": "a list",
                    "interval": "a fraction of an epoch (0, 1] or a step count >= 1"}[
                self.kind]
            bounds = []
            if self.low is not None:
                bounds.append(f"{'>' if self.low_open else '>='} {self.low:g}")
            if self.high is not None:
                bounds.append(f"{'<' if self.high_open else '<='} {self.high:g}")
            text = noun + (" " + " and ".join(bounds) if bounds else "")
        return ("null or " if self.nullable else "") + text


def _r(pattern: str, kind: str, **kw: Any) -> Rule:
    return Rule(pattern, kind, **kw)


RULES: tuple[Rule, ...] = (
    _r("seed", "int", low=0, meaning="global seed"),
    _r("name", "str"),
    _r("optimized_metric", "choice", choices=("val_ACC", "ACC", "BWT", "FWT", "forgetting", "drift",
                                              "explanation_forgetting", "ACC_task_masked")),
    _r("tags", "list"),
    _r("resume", "str", nullable=True),
    _r("schedule.epochs_per_task", "int", low=1),
    _r("schedule.steps_per_task", "int", low=1, nullable=True),
    _r("schedule.reset_optimizer", "bool"),
    _r("schedule.consolidate_last_task", "bool"),
    _r("checkpoint.every_epoch", "bool"),
    _r("checkpoint.keep_every_task", "bool"),
    _r("loader.batch_size", "int", low=1),
    _r("loader.eval_batch_size", "int", low=1),
    _r("loader.num_workers", "int", low=0),
    _r("evaluation.split", "choice", choices=("val", "test")),
    _r("evaluation.max_samples_per_task", "int", low=1, nullable=True),
    _r("evaluation.task_masked", "bool", meaning="also record the Task-IL-by-masking accuracy matrix"),
    _r("model.heads", "choice", choices=("auto", "single", "multi")),
    _r("model.init", "choice", choices=("default", "xavier")),
    _r("model.loss_units", "choice", choices=("all", "seen")),
    _r("*.dropout", "float", low=0, high=1, high_open=True),
    _r("*.lr", "float", low=0, low_open=True),
    _r("*.weight_decay", "float", low=0),
    _r("*.momentum", "float", low=0, high=1, high_open=True),
    _r("model.backbone.kernel_size", "int", low=1),
    _r("dataset.scenario", "choice", choices=("task", "domain", "class")),
    _r("dataset.num_tasks", "int", low=1),
    _r("dataset.val_fraction", "float", low=0, high=1, high_open=True),
    _r("dataset.*fraction", "float", low=0, high=1),
    _r("dataset.train_samples_per_task", "int", low=1, nullable=True),
    _r("dataset.test_samples_per_task", "int", low=1, nullable=True),
    _r("dataset.pad", "int", low=0),
    _r("strategy.lambda_", "float", low=0),
    _r("strategy.gamma", "float", low=0, high=1),
    _r("strategy.buffer_size", "int", low=0),
    _r("strategy.alpha", "float", low=0),
    _r("strategy.beta", "float", low=0),
    _r("strategy.temperature", "float", low=0, low_open=True),
    _r("strategy.replay_batch_size", "int", low=1, nullable=True),
    _r("strategy.num_examples", "int", low=1, nullable=True),
    _r("strategy.bce_weight", "float", low=0),
    _r("strategy.ce_weight", "float", low=0),
    _r("strategy.balance", "choice", choices=("fixed", "by_task")),
    _r("strategy.fill", "choice", choices=("stream", "task_end")),
    _r("strategy.buffer_mode", "choice", choices=("reservoir", "class_balanced", "task_balanced",
                                                      "task_class_balanced")),
    _r("strategy.student_units", "choice", choices=("old", "active")),
    _r("strategy.normalize", "bool"),
    _r("strategy.task_end_samples", "int", low=1, nullable=True),
    _r("explanation.weight", "float", low=0),
    _r("trainer.precision", "choice", choices=PRECISIONS),
    _r("trainer.accelerator", "choice", choices=ACCELERATORS),
    _r("trainer.devices", "int_or_auto", low=1),
    _r("trainer.num_nodes", "int", low=1),
    _r("trainer.val_check_interval", "interval"),
    _r("trainer.log_every_n_steps", "int", low=1),
    _r("trainer.gradient_clip_val", "float", low=0, low_open=True, nullable=True),
    _r("trainer.deterministic", "bool"),
    _r("*.samples_per_task", "int", low=1),
    _r("*.every_n_epochs", "int", low=1),
)
