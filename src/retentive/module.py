"""ContinualModule: the one LightningModule fitted task after task."""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from retentive.data.batch import Batch
from retentive.errors import ConfigError
from retentive.explanations.base import ExplanationLoss
from retentive.models.continual_net import ContinualNet
from retentive.strategies.base import Strategy


class ContinualModule(L.LightningModule):
    """Task loss + strategy penalty + weighted explanation loss; per-task evaluation metrics.

    Validation and test loaders come one per task (`dataloader_idx` == task id), so one Lightning
    evaluation pass measures every task, seen and unseen, with torchmetrics (synced under DDP).
    """

    def __init__(
        self,
        net: ContinualNet,
        strategy: Strategy,
        num_tasks: int,
        optimizer: Callable[..., torch.optim.Optimizer],
        explanation: ExplanationLoss | None = None,
        reset_optimizer: bool = True,
    ) -> None:
        super().__init__()
        self.net = net
        self.strategy = strategy
        self.explanation = explanation
        self.optimizer_factory = optimizer
        self.num_tasks = num_tasks
        self.reset_optimizer = reset_optimizer
        self._optimizer: torch.optim.Optimizer | None = None
        self.optimizer_state_to_load: dict | None = None
        self._step: tuple[Batch, Tensor] | None = None  # the running step's batch and logits, for the hooks
        self.step_terms: dict[str, Tensor] = {}  # the last training step's loss terms (train/task_loss, ...)
        self.current_task = -1
        self.task_loss_weight = 1.0  # lint's phase schedule sets 0 for penalty-only epochs
        self._epoch_sums: dict[str, list] = {}  # name -> [sum tensor, count]: cheaper than a Metric per step
        num_outputs = max(head.out_features for head in net.heads)
        self.eval_acc = nn.ModuleDict(
            {split: nn.ModuleList(MulticlassAccuracy(num_outputs, average="micro") for _ in range(num_tasks))
             for split in ("val", "test")}
        )
        # evaluation.task_masked: each task's output units on a single head; test accuracy with the other
        # tasks' units at -inf (mammoth's Task-IL for a Class-IL net), from the same test pass
        self.task_units: list[list[int]] | None = None
        # model.loss_units=seen: the task loss's softmax only over the output units of the tasks seen so far
        # (van de Ven's and Hsu's Class-IL "active classes"); the runner sets them at every task start
        self.loss_units: list[int] | None = None
        self.eval_acc_masked = nn.ModuleList(MulticlassAccuracy(num_outputs, average="micro") for _ in range(num_tasks))
        self.eval_loss = nn.ModuleDict(
            {split: nn.ModuleList(MeanMetric() for _ in range(num_tasks)) for split in ("val", "test")}
        )

    def forward(self, x: Tensor, t: Tensor | None = None) -> Tensor:
        return self.net(x, t)

    # -- training -------------------------------------------------------------------------
    def task_loss(self, logits: Tensor, batch: Batch) -> Tensor:
        """Cross-entropy averaged over the *global* batch: under DDP each process sums its shard and
        divides by the global size (times N, as DDP averages gradients over N processes), so N
        processes take the same steps as one. With `loss_units` the other output units are left out."""
        if self.loss_units is not None:
            logits = mask_other_tasks(logits, self.loss_units)
        if batch.global_size is None:
            return F.cross_entropy(logits, batch.y)
        world = self.trainer.world_size if self._trainer is not None else 1
        return F.cross_entropy(logits, batch.y, reduction="sum") * (world / batch.global_size)

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        batch = Batch.of(batch)
        logits = self.net(batch.x, batch.t)
        task_loss = self.task_loss(logits, batch)
        penalty = self.strategy.loss(self.net, batch, logits)
        loss = self.task_loss_weight * self.strategy.task_loss_weight * task_loss + penalty
        terms = {"train/task_loss": task_loss, "train/penalty": penalty}
        if self.explanation is not None and self.explanation.weight != 0:
            explanation_loss = self.explanation(self.net, batch.x, batch.y, batch.mask, batch.t)
            loss = loss + self.explanation.weight * explanation_loss
            terms["train/explanation_loss"] = explanation_loss
        terms["train/loss"] = loss
        self._check_finite(loss, terms)
        for name, value in terms.items():
            entry = self._epoch_sums.setdefault(name, [0.0, 0])
            entry[0] = entry[0] + value.detach()
            entry[1] += 1
        if (self.global_step + 1) % self.trainer.log_every_n_steps == 0:
            # Lightning's log() costs ~1 ms a call on CPU: log only on the steps its loggers write
            self.log_dict({**terms, "task": float(self.current_task)}, on_step=True, on_epoch=False)
        self._step = (batch, logits.detach())
        self.step_terms = {k: v.detach() for k, v in terms.items()}  # for callbacks (callbacks/sanity.py)
        return loss

    def _check_finite(self, loss: Tensor, terms: dict[str, Tensor]) -> None:
        """Stop on NaN/inf with one line (a sync on accelerators, so only every 50th step there)."""
        if loss.device.type != "cpu" and self.global_step % 50:
            return
        if not torch.isfinite(loss):
            values = ", ".join(f"{k.split('/')[-1]} {v.item():.4g}" for k, v in terms.items())
            raise ConfigError(
                "loss", f"non-finite loss at task {self.current_task}, step {self.global_step} ({values})",
                "lower model.optimizer.lr or the strategy/explanation weight; results so far are saved",
            )

    def on_train_epoch_end(self) -> None:
        for name, (total, count) in self._epoch_sums.items():
            self.log(f"{name}_epoch", total / count, prog_bar=name == "train/task_loss", sync_dist=True)
        self._epoch_sums.clear()

    def on_after_backward(self) -> None:
        self.strategy.on_after_backward(self.net, self._step[0])

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        step_batch, logits = self._step
        self.strategy.on_train_batch_end(self.net, step_batch, logits)
        self._step = None

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """A fresh optimizer per task (`reset_optimizer`), or one kept for the whole sequence; a
        resumed run first loads the saved optimizer state (`optimizer_state_to_load`)."""
        if self.reset_optimizer or self._optimizer is None:
            self._optimizer = self.optimizer_factory(params=self.net.parameters())
        if self.optimizer_state_to_load is not None:
            self._optimizer.load_state_dict(self.optimizer_state_to_load)
            self.optimizer_state_to_load = None
        return self._optimizer

    @property
    def current_optimizer(self) -> torch.optim.Optimizer | None:
        """The optimizer of the current (or last) task."""
        return self._optimizer

    # -- evaluation -----------------------------------------------------------------------
    def _evaluate(self, split: str, batch: Batch, dataloader_idx: int) -> None:
        batch = Batch.of(batch)
        if len(batch):  # a DDP shard of a tiny last batch can be empty
            logits = self.strategy.eval_logits(self.net, batch)
            y = batch.y
            self.eval_loss[split][dataloader_idx].update(F.cross_entropy(logits, y, reduction="sum") / len(y), len(y))
            self.eval_acc[split][dataloader_idx].update(logits, y)
            if split == "test" and self.task_units is not None:
                self.eval_acc_masked[dataloader_idx].update(mask_other_tasks(logits, self.task_units[dataloader_idx]), y)
        self.log(f"{split}/acc/task{dataloader_idx}", self.eval_acc[split][dataloader_idx],
                 on_epoch=True, add_dataloader_idx=False)
        self.log(f"{split}/loss/task{dataloader_idx}", self.eval_loss[split][dataloader_idx],
                 on_epoch=True, add_dataloader_idx=False)

    def validation_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._evaluate("val", batch, dataloader_idx)

    def test_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._evaluate("test", batch, dataloader_idx)

    def task_masked_accuracies(self) -> list[float] | None:
        """Per-task test accuracy with other tasks' units masked, from the last test pass (then reset);
        None unless `task_units` is set."""
        if self.task_units is None:
            return None
        accuracies = [float(metric.compute()) for metric in self.eval_acc_masked]
        for metric in self.eval_acc_masked:
            metric.reset()
        return accuracies

    def task_metrics(self, split: str) -> dict[str, list[float]]:
        """Accuracy and loss per task from the last evaluation pass (read from logged metrics)."""
        metrics = self.trainer.callback_metrics
        return {
            kind: [float(metrics[f"{split}/{kind}/task{j}"]) for j in range(self.num_tasks)]
            for kind in ("acc", "loss")
        }


def mask_other_tasks(logits: Tensor, units: list[int]) -> Tensor:
    """`logits` with every output unit outside `units` set to -inf (mammoth's `mask_classes`)."""
    keep = torch.zeros(logits.shape[1], dtype=torch.bool, device=logits.device)
    keep[units] = True
    return logits.masked_fill(~keep, float("-inf"))
