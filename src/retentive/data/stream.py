"""TaskStream: a dataset cut into tasks, with the label space each continual scenario needs."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from torch import Tensor

from retentive.data.sources import ImageSplit
from retentive.data.task_dataset import TaskDataset
from retentive.errors import ConfigError

SCENARIOS = ("task", "domain", "class")


@dataclass(frozen=True)
class RawTask:
    """One task before scenario labelling: images with their original labels."""

    name: str
    train: ImageSplit
    test: ImageSplit
    classes: tuple[int, ...]  # original labels in this task, in head order
    masks_train: Tensor | None = None
    masks_test: Tensor | None = None


class TaskStream(ABC):
    """Base of every stream: held-out validation split, slicing, and scenario label spaces.

    Task-IL: one head per task, task-local labels. Domain-IL: one shared head, task-local labels.
    Class-IL: one head over all tasks' classes, labels offset so tasks never share a class.
    """

    supported_scenarios: tuple[str, ...] = SCENARIOS

    def __init__(
        self,
        scenario: str = "class",
        val_fraction: float = 0.1,
        train_samples_per_task: int | None = None,
        test_samples_per_task: int | None = None,
        seed: int = 0,
        mean: float = 0.0,
        std: float = 1.0,
    ) -> None:
        if scenario not in self.supported_scenarios:
            raise ConfigError(
                "dataset.scenario",
                f"'{scenario}' is not possible for {type(self).__name__}",
                f"choose one of {', '.join(self.supported_scenarios)}",
            )
        if not 0.0 <= val_fraction < 1.0:
            raise ConfigError("dataset.val_fraction", f"{val_fraction} is outside [0, 1)")
        self.scenario = scenario
        self.val_fraction = val_fraction
        self.train_samples_per_task = train_samples_per_task
        self.test_samples_per_task = test_samples_per_task
        self.seed = seed
        self.mean = mean
        self.std = std
        self._raw = self.build_tasks()
        self._offsets = self._class_offsets()
        self._splits = [self._split_task(t, raw) for t, raw in enumerate(self._raw)]

    @abstractmethod
    def build_tasks(self) -> list[RawTask]:
        """The tasks of this stream, in order."""

    # -- shape of the problem -------------------------------------------------------------
    @property
    def num_tasks(self) -> int:
        return len(self._raw)

    @property
    def task_names(self) -> list[str]:
        return [raw.name for raw in self._raw]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self._raw[0].train.images.shape[1:])  # type: ignore[return-value]

    @property
    def multihead(self) -> bool:
        return self.scenario == "task"

    @property
    def has_masks(self) -> bool:
        return self._raw[0].masks_train is not None

    @property
    def head_sizes(self) -> list[int]:
        sizes = [len(raw.classes) for raw in self._raw]
        if self.scenario == "task":
            return sizes
        if self.scenario == "domain":
            return [max(sizes)]
        return [sum(sizes)]

    @property
    def task_output_units(self) -> list[list[int]]:
        """The output units each task's labels use: Class-IL its block of the one head (labels are
        offset per task); Task-/Domain-IL every unit of its head (masking changes nothing there)."""
        width = max(self.head_sizes)
        if self.scenario != "class":
            return [list(range(width)) for _ in self._raw]
        return [list(range(offset, offset + len(raw.classes))) for offset, raw in zip(self._offsets, self._raw,
                                                                                     strict=True)]

    def _class_offsets(self) -> list[int]:
        offsets, total = [], 0
        for raw in self._raw:
            offsets.append(total)
            total += len(raw.classes)
        return offsets

    # -- data ----------------------------------------------------------------------------
    def train(self, task: int) -> TaskDataset:
        return self._splits[task][0]

    def val(self, task: int) -> TaskDataset:
        return self._splits[task][1]

    def test(self, task: int) -> TaskDataset:
        return self._splits[task][2]

    def _labels(self, task: int, original: Tensor) -> Tensor:
        classes = torch.tensor(self._raw[task].classes)
        local = (original.unsqueeze(1) == classes.unsqueeze(0)).long().argmax(dim=1)
        return local + self._offsets[task] if self.scenario == "class" else local

    def _dataset(self, task: int, split: ImageSplit, masks: Tensor | None, index: Tensor) -> TaskDataset:
        return TaskDataset(
            split.images[index],
            self._labels(task, split.labels[index]),
            task,
            None if masks is None else masks[index],
            self.mean,
            self.std,
        )

    def _split_task(self, task: int, raw: RawTask) -> tuple[TaskDataset, TaskDataset, TaskDataset]:
        train_idx, val_idx, test_idx = self._split_indices(task, raw)
        return (
            self._dataset(task, raw.train, raw.masks_train, train_idx),
            self._dataset(task, raw.train, raw.masks_train, val_idx),
            self._dataset(task, raw.test, raw.masks_test, test_idx),
        )

    def _split_indices(self, task: int, raw: RawTask) -> tuple[Tensor, Tensor, Tensor]:
        """(train, val, test) indices into `raw.train` / `raw.train` / `raw.test` (seeded per task)."""
        generator = torch.Generator().manual_seed(self.seed * 1000 + task)
        order = torch.randperm(len(raw.train), generator=generator)
        n_val = int(round(len(order) * self.val_fraction))
        val_idx, train_idx = order[:n_val], order[n_val:]
        if self.train_samples_per_task is not None:
            train_idx = train_idx[: self.train_samples_per_task]
            val_idx = val_idx[: max(1, int(self.train_samples_per_task * self.val_fraction))]
        test_idx = torch.arange(len(raw.test))
        if self.test_samples_per_task is not None:
            test_idx = torch.randperm(len(raw.test), generator=generator)[: self.test_samples_per_task]
        return train_idx, val_idx, test_idx

    def describe(self) -> str:
        sizes = ", ".join(f"{name}: {len(self.train(t))}/{len(self.val(t))}/{len(self.test(t))}"
                          for t, name in enumerate(self.task_names))
        return f"{type(self).__name__} ({self.scenario}-IL, {self.num_tasks} tasks; train/val/test {sizes})"
