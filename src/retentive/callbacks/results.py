"""ContinualResults: the accuracy matrix, per-epoch history, results.json and metrics.csv."""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch

from retentive.callbacks.continual import ContinualCallback
from retentive.metrics.accuracy_matrix import AccuracyMatrix
from retentive.storage.atomic import atomic_write_text

log = logging.getLogger("retentive")

CSV_FIELDS = ("trained_task", "epoch", "step", "split", "eval_task", "accuracy", "loss")


class ContinualResults(ContinualCallback):
    """Records every all-task evaluation and writes the run's results.

    After each validation pass (every epoch): one history row per task. After each test pass at a
    task boundary: a row of the accuracy matrix R (row -1 is the random-init reference for FWT).
    Files are rewritten atomically at every epoch end and task end, so a reader never sees a
    partial file and a run killed later keeps what it made.
    """

    def __init__(self, output_dir: str | Path, num_tasks: int, task_names: list[str], meta: dict[str, Any]) -> None:
        self.output_dir = Path(output_dir)
        self.num_tasks = num_tasks
        self.task_names = task_names
        self.meta = meta
        self.matrix = AccuracyMatrix(num_tasks)
        self.history: list[dict[str, Any]] = []
        self.task_end_steps: list[int] = []  # global step at which each task ends
        self.status = "running"
        self.started = time.time()
        self.seconds_before = 0.0  # wall time of earlier sessions of a resumed run
        self.eval_seconds = 0.0
        self.strategy_memory_bytes = 0  # buffers, teachers, importances kept besides the net
        self._eval_start = 0.0
        self.sections: dict[str, Callable[[], dict[str, Any]]] = {}
        self.masked_matrix: AccuracyMatrix | None = None  # evaluation.task_masked (Task-IL by masking)

    def add_section(self, name: str, provider: Callable[[], dict[str, Any]]) -> None:
        """Other callbacks (explanation drift, warnings) add their part of results.json: `provider()`
        is merged into every summary, so the file always holds every part made so far."""
        self.sections[name] = provider

    # -- recording ------------------------------------------------------------------------
    def _record(self, trainer: L.Trainer, module: L.LightningModule, split: str) -> list[float]:
        metrics = module.task_metrics(split)
        for task, (acc, loss) in enumerate(zip(metrics["acc"], metrics["loss"], strict=True)):
            self.history.append({
                "trained_task": module.current_task, "epoch": trainer.current_epoch, "step": trainer.global_step,
                "split": split, "eval_task": task, "accuracy": acc, "loss": loss,
            })
        return metrics["acc"]

    def on_validation_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._eval_start = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.eval_seconds += time.perf_counter() - self._eval_start
        accuracies = self._record(trainer, module, "val")
        if trainer.is_global_zero:
            log.info("task %d epoch %d step %d | val acc per task: %s", module.current_task,
                     trainer.current_epoch, trainer.global_step, " ".join(f"{a:.3f}" for a in accuracies))
        seen = accuracies[: module.current_task + 1]
        if seen and trainer.loggers:
            for logger in trainer.loggers:
                logger.log_metrics({"val/acc_seen_mean": sum(seen) / len(seen)}, step=trainer.global_step)

    def on_test_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        accuracies = self._record(trainer, module, "test")
        self.matrix.update(module.current_task, torch.tensor(accuracies))
        masked = module.task_masked_accuracies() if hasattr(module, "task_masked_accuracies") else None
        if masked is not None:
            self._masked().update(module.current_task, torch.tensor(masked))

    def _masked(self) -> AccuracyMatrix:
        """The task-masked matrix, made (and its results.json section added) on first use."""
        if self.masked_matrix is None:
            self.masked_matrix = AccuracyMatrix(self.num_tasks)
            self.add_section("task_masked", self._masked_section)
        return self.masked_matrix

    def _masked_section(self) -> dict[str, Any]:
        """`accuracy_matrix_task_masked`, `ACC_task_masked`, `BWT_task_masked`, ... beside the Class-IL ones."""
        lists = self.masked_matrix.as_lists()
        return {**{f"{k}_task_masked": v for k, v in self.masked_matrix.compute().items()},
                "accuracy_matrix_task_masked": lists["accuracy_matrix"],
                "random_init_accuracy_task_masked": lists["random_init_accuracy"]}

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            self.write()

    def on_task_end(self, trainer: L.Trainer, module: L.LightningModule, task: int) -> None:
        self.task_end_steps.append(trainer.global_step)
        strategy = getattr(module, "strategy", None)
        if strategy is not None and hasattr(strategy, "memory_bytes"):
            self.strategy_memory_bytes = strategy.memory_bytes()
        scores = self.matrix.compute()
        for logger in trainer.loggers:
            logger.log_metrics({f"cl/{k}": v for k, v in scores.items()}, step=trainer.global_step)
        if trainer.is_global_zero:
            self.write()

    def on_sequence_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self.status == "running":
            self.status = "complete"
        if trainer.is_global_zero:
            self.write()

    # -- output ---------------------------------------------------------------------------
    def validation_accuracy(self) -> float | None:
        """`val_ACC`: mean over all tasks of the latest per-epoch validation accuracy once the last
        task is trained — the number sweeps select hyperparameters on (test stays for reporting)."""
        if self.matrix.rows_filled < self.num_tasks:
            return None
        latest: dict[int, tuple[int, float]] = {}
        final = [r for r in self.history if r["split"] == "val" and r["trained_task"] == self.num_tasks - 1]
        for row in final:
            if row["eval_task"] not in latest or row["step"] >= latest[row["eval_task"]][0]:
                latest[row["eval_task"]] = (row["step"], row["accuracy"])
        if len(latest) < self.num_tasks:
            return None
        return sum(acc for _, acc in latest.values()) / self.num_tasks

    def summary(self) -> dict[str, Any]:
        scores = self.matrix.compute()
        lists = self.matrix.as_lists()
        final_row = lists["accuracy_matrix"][-1] if lists["accuracy_matrix"] else []
        return {
            **self.meta,
            "status": self.status,
            "task_names": self.task_names,
            "tasks_completed": self.matrix.rows_filled,
            **scores,
            "val_ACC": self.validation_accuracy(),
            "final_accuracy_per_task": final_row,
            **lists,
            "task_end_steps": self.task_end_steps,
            "strategy_memory_bytes": self.strategy_memory_bytes,
            "seconds": round(self.seconds_before + time.time() - self.started, 2),
            "eval_seconds": round(self.eval_seconds, 2),
            **{key: value for provider in self.sections.values() for key, value in provider().items()},
        }

    def write(self) -> dict[str, Any]:
        """results.json and metrics.csv, each replaced atomically (temp file, fsync, rename)."""
        summary = self.summary()
        atomic_write_text(self.output_dir / "results.json", json.dumps(summary, indent=2))
        table = io.StringIO(newline="")
        writer = csv.DictWriter(table, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(self.history)
        atomic_write_text(self.output_dir / "metrics.csv", table.getvalue())
        return summary

    # -- resume ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = {**_matrix_state(self.matrix),
                 "history": self.history, "task_end_steps": self.task_end_steps,
                 "eval_seconds": self.eval_seconds, "strategy_memory_bytes": self.strategy_memory_bytes,
                 "seconds": self.seconds_before + time.time() - self.started}
        if self.masked_matrix is not None:
            state["masked"] = _matrix_state(self.masked_matrix)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        _load_matrix(self.matrix, state)
        self.history = list(state["history"])
        self.task_end_steps = list(state["task_end_steps"])
        self.eval_seconds = state["eval_seconds"]
        self.strategy_memory_bytes = state.get("strategy_memory_bytes", 0)
        self.seconds_before, self.started = state["seconds"], time.time()
        if "masked" in state:
            _load_matrix(self._masked(), state["masked"])


def _matrix_state(matrix: AccuracyMatrix) -> dict[str, torch.Tensor]:
    return {"matrix": matrix.matrix.cpu(), "reference": matrix.reference.cpu()}


def _load_matrix(matrix: AccuracyMatrix, state: dict[str, torch.Tensor]) -> None:
    matrix.matrix = state["matrix"].to(matrix.matrix.device)
    matrix.reference = state["reference"].to(matrix.reference.device)
    # the restored rows count as updates: torchmetrics would otherwise warn "compute before update"
    matrix._update_count = max(matrix._update_count, matrix.rows_filled)
    matrix._computed = None
