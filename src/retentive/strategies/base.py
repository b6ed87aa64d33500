"""Strategy: the hook points every continual-learning method plugs into.

Hooks receive what they use (the network, the batch, the logits), never the LightningModule, so a
method is one class that can be tested with a plain training loop and the module does not import
any strategy. Everything a strategy accumulates (importances, anchors, buffers, a teacher) lives in
its `state_dict`, which the run checkpoint stores and resume restores.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn
from torch.utils.data import Sampler

from retentive.data.batch import Batch
from retentive.data.stream import TaskStream
from retentive.data.task_dataset import TaskDataset


def device_of(net: nn.Module) -> torch.device:
    """The device a network's parameters live on (CPU for a parameterless net)."""
    return next((p.device for p in net.parameters()), torch.device("cpu"))


class Strategy:
    """Fine-tuning by default; subclasses override the hooks they need.

    Order per task: `train_dataset`, `train_sampler`, `on_task_start`; per step `loss` (added to
    the task loss), `on_after_backward`, `on_train_batch_end`; then `on_task_end` once the task's
    training and test are over (with a loader over that task's training data). `setup` runs once
    before task 0 (and before `load_state_dict` on resume).
    """

    #: capabilities the model must have, checked before training (e.g. "conv" for GradCAM-based)
    needs: tuple[str, ...] = ()
    #: weight of the module's cross-entropy in the step's loss (iCaRL's BCE-only variant sets 0)
    task_loss_weight: float = 1.0

    def setup(self, net: nn.Module) -> None:
        """Once, before the first task (check the net, bind teachers to its architecture)."""

    def train_dataset(self, task_id: int, stream: TaskStream) -> TaskDataset:
        """What the model trains on during task `task_id` (only that task's data by default)."""
        return stream.train(task_id)

    def train_sampler(self, task_id: int, dataset: TaskDataset, num_samples: int | None) -> Sampler | None:
        """Order of the task's training samples (None: uniform shuffling, `num_samples` per epoch).

        Override for class-balanced or weighted sampling; under DDP every process takes its shard
        of the same global batches, so a sampler must draw from the global torch RNG (or its own
        seeded generator) to give every process the same order.
        """
        return None

    def on_task_start(self, net: nn.Module, task_id: int) -> None:
        """Before training on `task_id` (snapshot a teacher, reset per-task buffers)."""

    def loss(self, net: nn.Module, batch: Batch, logits: Tensor) -> Tensor:
        """Added to the task loss at every step: distillation, replay, a penalty (default: `penalty`)."""
        return self.penalty(net)

    def penalty(self, net: nn.Module) -> Tensor:
        """A regulariser of the weights alone (0 for fine-tuning)."""
        return torch.zeros((), device=device_of(net))

    def on_after_backward(self, net: nn.Module, batch: Batch) -> None:
        """After `loss.backward()`, gradients available (SI records them, A-GEM projects them)."""

    def on_train_batch_end(self, net: nn.Module, batch: Batch, logits: Tensor) -> None:
        """After the optimizer step; `logits` are the step's (detached) outputs on `batch`."""

    def on_task_end(self, net: nn.Module, task_id: int, batches: Iterable[Batch]) -> None:
        """After training on `task_id` (importances and anchors are computed here)."""

    def eval_logits(self, net: nn.Module, batch: Batch) -> Tensor:
        """Scores used at evaluation (validation, test, `retentive.evaluate`): the net's outputs by
        default; iCaRL's nearest-mean-of-exemplars classifier replaces them."""
        return net(batch.x, batch.t)

    def memory_bytes(self) -> int:
        """Bytes the strategy keeps besides the net (buffers, teachers, importances), for results.json."""
        return sum(t.nbytes for t in _tensors(self.state_dict()))

    def state_dict(self) -> dict:
        """Everything accumulated so far, as tensors and plain Python values (weights-only loadable)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what `state_dict` returned."""


def _tensors(value: object) -> Iterable[torch.Tensor]:
    """Every tensor inside nested dicts/lists/tuples (a state dict)."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _tensors(item)
