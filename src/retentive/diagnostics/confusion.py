"""ConfusionMatrices: the confusion matrix of the seen tasks at every (n-th) epoch's validation.

It rides on the all-task validation pass the module runs every epoch: for the val batches of the
tasks seen so far (0..current task) it scores the batch again with the strategy's `eval_logits`
(what the module classifies by) and feeds a torchmetrics `MulticlassConfusionMatrix`, which also
sums the counts over processes under DDP.

Label layout: Class-IL labels are global, so one matrix over the head's classes. Task-IL and
Domain-IL labels are task-local (every task has its own 0, 1, ...), so task t's classes sit at
`offset[t] + local label`: a block-diagonal matrix, one block per task, where off-block cells
(a head confusing classes of two tasks) cannot occur and are 0 by construction.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torchmetrics.classification import MulticlassConfusionMatrix

from retentive.callbacks.continual import ContinualCallback
from retentive.data.batch import Batch
from retentive.data.stream import TaskStream
from retentive.diagnostics.figures import confusion_figure, save_figure
from retentive.diagnostics.timing import report_seconds
from retentive.errors import require
from retentive.loggers import log_image
from retentive.models.continual_net import ContinualNet
from retentive.storage.atomic import atomic_write_text


def label_layout(scenario: str, net: ContinualNet, num_tasks: int) -> tuple[list[int], list[str]]:
    """(offset of each task's labels, the names of the matrix's classes): see the module docstring."""
    if scenario == "class":
        return [0] * num_tasks, [str(c) for c in range(net.heads[0].out_features)]
    widths = [net.heads[t if net.multihead else 0].out_features for t in range(num_tasks)]
    offsets = [sum(widths[:t]) for t in range(num_tasks)]
    return offsets, [f"{t}:{c}" for t in range(num_tasks) for c in range(widths[t])]


class ConfusionMatrices(ContinualCallback):
    """Writes `diagnostics/confusion.json` (every computed matrix with its epoch, step and task),
    `diagnostics/confusion_latest.png` and `diagnostics/confusion_after_task<k>.png`, and logs the
    image as `diagnostics/confusion_matrix` to TensorBoard / W&B."""

    def __init__(self, every_n_epochs: int = 1, max_samples_per_task: int | None = 500,
                 log_images: bool = True, output_dir: str | None = None) -> None:
        require(isinstance(every_n_epochs, int) and every_n_epochs >= 1, "callbacks.confusion.every_n_epochs",
                f"{every_n_epochs!r} is not a positive number of epochs", "use 1 for every epoch")
        require(max_samples_per_task is None or (isinstance(max_samples_per_task, int) and max_samples_per_task > 0),
                "callbacks.confusion.max_samples_per_task", f"{max_samples_per_task!r} is not a positive count",
                "use a count such as 500, or null for every evaluated sample")
        self.every_n_epochs = every_n_epochs
        self.max_samples_per_task = max_samples_per_task
        self.log_images = log_images
        self.output_dir = Path(output_dir) if output_dir else None
        self.scenario = "class"
        self.num_tasks = 0
        self.entries: list[dict[str, Any]] = []  # one per computed evaluation, matrix as a LongTensor
        self.seconds = 0.0
        self._metric: MulticlassConfusionMatrix | None = None
        self._offsets: list[int] = []
        self._labels: list[str] = []
        self._class_ends: list[int] = []  # Class-IL: number of global classes seen after task t
        self._active = False
        self._plotted: dict[str, Any] | None = None  # the entry confusion_latest.png shows
        self._taken: dict[int, int] = {}

    def attach(self, stream: TaskStream, output_dir: str | Path) -> None:
        """The runner hands over the task stream and the run dir."""
        self.scenario, self.num_tasks = stream.scenario, stream.num_tasks
        self.output_dir = (self.output_dir or Path(output_dir)) / "diagnostics"
        ends = [int(stream.test(t).labels.max()) + 1 if len(stream.test(t)) else 0 for t in range(self.num_tasks)]
        self._class_ends = [max(ends[: t + 1]) for t in range(self.num_tasks)]

    def _layout(self, net: ContinualNet) -> None:
        if not self._labels:
            self._offsets, self._labels = label_layout(self.scenario, net, self.num_tasks)

    def setup(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        report_seconds(trainer, "confusion_matrix", lambda: self.seconds)

    # -- collecting -----------------------------------------------------------------------
    def _due(self, trainer: L.Trainer) -> bool:
        """Every n-th epoch, and always the last epoch of a task (its matrix goes with the task end)."""
        epoch = trainer.current_epoch
        return (epoch + 1) % self.every_n_epochs == 0 or epoch + 1 >= trainer.fit_loop.max_epochs

    def on_validation_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._active = self.num_tasks > 0 and not trainer.sanity_checking and self._due(trainer)
        if not self._active:
            return
        if self._metric is None:
            self._layout(module.net)
            self._metric = MulticlassConfusionMatrix(len(self._labels), validate_args=False)
        self._metric = self._metric.to(module.device)
        self._metric.reset()
        self._taken = {}

    def on_validation_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, batch: Any,
                                batch_idx: int, dataloader_idx: int = 0) -> None:
        if not self._active or dataloader_idx > module.current_task:
            return
        start = time.perf_counter()
        batch = Batch.of(batch)
        taken = self._taken.get(dataloader_idx, 0)
        if self.max_samples_per_task is not None:
            batch = batch.select(slice(0, max(self.max_samples_per_task - taken, 0)))
        if len(batch):
            with torch.no_grad():
                predictions = module.strategy.eval_logits(module.net, batch).argmax(dim=1)
            offset = self._offsets[dataloader_idx]
            self._metric.update(predictions + offset, batch.y + offset)
            self._taken[dataloader_idx] = taken + len(batch)
        self.seconds += time.perf_counter() - start

    def on_validation_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not self._active:
            return
        self._active = False
        start = time.perf_counter()
        matrix = self._metric.compute().cpu().long()  # every process takes part in the sync
        task = module.current_task
        self.entries.append({"epoch": trainer.current_epoch, "step": trainer.global_step, "trained_task": task,
                             "seen_tasks": task + 1, "samples": int(matrix.sum()), "matrix": matrix})
        if trainer.is_global_zero:
            self._write()
            path = self._plot(self.entries[-1], self.output_dir / "confusion_latest.png")
            self._plotted = self.entries[-1]
            if self.log_images:
                log_image(trainer, "diagnostics/confusion_matrix", path, trainer.global_step)
        self.seconds += time.perf_counter() - start

    # -- output ---------------------------------------------------------------------------
    def on_task_end(self, trainer: L.Trainer, module: L.LightningModule, task: int) -> None:
        last = next((e for e in reversed(self.entries) if e["trained_task"] == task), None)
        if last is None or not trainer.is_global_zero:
            return
        start = time.perf_counter()
        target, latest = self.output_dir / f"confusion_after_task{task}.png", self.output_dir / "confusion_latest.png"
        if last is self.entries[-1] and self._plotted is last and latest.exists():
            shutil.copyfile(latest, target)  # the figure of the task's last epoch is already drawn
        else:  # e.g. a run resumed after the task's last epoch had no validation pass in this process
            self._layout(module.net)
            self._plot(last, target)
        self.seconds += time.perf_counter() - start

    def _plot(self, entry: dict[str, Any], path: Path) -> Path:
        seen = entry["seen_tasks"]
        if self.scenario == "class":  # global classes: those of unseen tasks are left out (no samples)
            seen_classes = self._class_ends[seen - 1]
        else:
            seen_classes = self._offsets[seen] if seen < self.num_tasks else len(self._labels)
        layout = "global labels" if self.scenario == "class" else "task:local label"
        title = (f"Confusion matrix, validation, seen tasks 0-{seen - 1} (after epoch {entry['epoch']}, "
                 f"step {entry['step']}; {layout})\ncolour: % of each true class, numbers: counts")
        return save_figure(confusion_figure(entry["matrix"].numpy(), self._labels, seen_classes, title), path)

    def _write(self) -> None:
        """One JSON for the whole run (not a file per epoch): one entry per line, full matrices."""
        lines = ",\n".join(json.dumps({**e, "matrix": e["matrix"].tolist()}) for e in self.entries)
        header = json.dumps({"layout": "global" if self.scenario == "class" else "task_offset",
                             "labels": self._labels, "offsets": self._offsets,
                             "max_samples_per_task": self.max_samples_per_task})
        atomic_write_text(self.output_dir / "confusion.json", f'{header[:-1]}, "entries": [\n{lines}\n]}}\n')

    # -- resume ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"entries": [dict(e) for e in self.entries], "seconds": self.seconds} if self.entries else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.entries = [dict(e) for e in state.get("entries", [])]
        self.seconds = state.get("seconds", 0.0)
