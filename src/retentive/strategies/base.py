"""Strategy: the hook points every continual-learning method plugs into."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from retentive.data.stream import TaskStream
from retentive.data.task_dataset import TaskDataset

if TYPE_CHECKING:
    from retentive.module import ContinualModule


class Strategy:
    """Fine-tuning by default; subclasses override the hooks they need.

    Hooks run in this order for each task: `train_dataset`, `on_task_start`, then per step
    `penalty` (added to the loss), `on_after_backward`, `on_train_batch_end`, and `on_task_end`
    once the task's training is over (with a loader over that task's training data).
    """

    #: capabilities the model must have, checked before training (e.g. "conv" for GradCAM-based)
    needs: tuple[str, ...] = ()

    def setup(self, module: ContinualModule) -> None:
        """Once, before the first task."""

    def train_dataset(self, task_id: int, stream: TaskStream) -> TaskDataset:
        """What the model trains on during task `task_id` (only that task's data by default)."""
        return stream.train(task_id)

    def on_task_start(self, module: ContinualModule, task_id: int) -> None:
        """Before training on `task_id`."""

    def penalty(self, module: ContinualModule) -> Tensor:
        """Regulariser added to the task loss at every step."""
        return torch.zeros((), device=module.device)

    def on_after_backward(self, module: ContinualModule) -> None:
        """After `loss.backward()`, gradients available."""

    def on_train_batch_end(self, module: ContinualModule) -> None:
        """After the optimizer step."""

    def on_task_end(self, module: ContinualModule, task_id: int, dataloader: DataLoader) -> None:
        """After training on `task_id` (importances and anchors are computed here)."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what `state_dict` returned."""
