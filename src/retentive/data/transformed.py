"""Streams where every task is the whole of MNIST (or Fashion-MNIST) under a task-specific input transform."""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.transforms.functional import rotate

from retentive.data.sources import ImageSplit, load_torchvision, source_info
from retentive.data.stream import RawTask, TaskStream
from retentive.errors import ConfigError


class TransformedMNIST(TaskStream):
    """Base: `num_tasks` copies of MNIST, task t seen through `transform(t, images)`.

    `source` picks the images (`mnist`, `fashion_mnist`: any source in `sources.SOURCES`).
    """

    def __init__(self, num_tasks: int = 10, data_dir: str | None = None, pad: int = 0, source: str = "mnist",
                 **kwargs) -> None:
        if num_tasks < 1:
            raise ConfigError("dataset.num_tasks", f"{num_tasks} must be >= 1")
        if pad < 0:
            raise ConfigError("dataset.pad", f"{pad} must be >= 0", "use 0 (28x28) or 2 (32x32, as van de Ven 2019)")
        self._num_tasks = num_tasks
        self.source = source
        self.num_classes = source_info(source).num_classes
        self.data_dir = data_dir
        self.pad = pad
        super().__init__(**kwargs)

    def _padded(self, images: Tensor) -> Tensor:
        """Zero border of `pad` pixels (black), applied before the task transform."""
        return torch.nn.functional.pad(images, (self.pad,) * 4) if self.pad else images

    def transform(self, task: int, images: Tensor) -> Tensor:
        raise NotImplementedError

    def task_name(self, task: int) -> str:
        return str(task)

    def build_tasks(self) -> list[RawTask]:
        train = load_torchvision(self.source, self.data_dir, True)
        test = load_torchvision(self.source, self.data_dir, False)
        return [
            RawTask(
                name=self.task_name(t),
                train=ImageSplit(self.transform(t, self._padded(train.images)), train.labels),
                test=ImageSplit(self.transform(t, self._padded(test.images)), test.labels),
                classes=tuple(range(self.num_classes)),
            )
            for t in range(self._num_tasks)
        ]


class PermutedMNIST(TransformedMNIST):
    """Permuted MNIST: one seeded pixel permutation per task (task 0 unpermuted if asked)."""

    def __init__(self, permutation_seed: int = 0, first_task_identity: bool = False, **kwargs) -> None:
        self.permutation_seed = permutation_seed
        self.first_task_identity = first_task_identity
        super().__init__(**kwargs)

    def permutation(self, task: int, num_pixels: int) -> Tensor:
        if task == 0 and self.first_task_identity:
            return torch.arange(num_pixels)
        generator = torch.Generator().manual_seed(self.permutation_seed * 10_007 + task)
        return torch.randperm(num_pixels, generator=generator)

    def transform(self, task: int, images: Tensor) -> Tensor:
        flat = images.flatten(1)
        return flat[:, self.permutation(task, flat.shape[1])].view_as(images)

    def task_name(self, task: int) -> str:
        return f"perm{task}"


class RotatedMNIST(TransformedMNIST):
    """Rotated MNIST: task t rotates every digit by `angles[t]` degrees (default evenly in [0, max_angle))."""

    def __init__(self, angles: list[float] | None = None, max_angle: float = 180.0, **kwargs) -> None:
        self.max_angle = max_angle
        self.angles = list(angles) if angles is not None else None
        if self.angles is not None:
            kwargs["num_tasks"] = len(self.angles)
        super().__init__(**kwargs)

    def angle(self, task: int) -> float:
        if self.angles is not None:
            return float(self.angles[task])
        return task * self.max_angle / self._num_tasks

    def transform(self, task: int, images: Tensor) -> Tensor:
        return rotate(images, self.angle(task))

    def task_name(self, task: int) -> str:
        return f"rot{self.angle(task):g}"


class PermutedFashionMNIST(PermutedMNIST):
    """Permuted Fashion-MNIST: PermutedMNIST's tasks (same permutations for the same seed) on Fashion-MNIST."""

    def __init__(self, source: str = "fashion_mnist", **kwargs) -> None:
        super().__init__(source=source, **kwargs)


class RotatedFashionMNIST(RotatedMNIST):
    """Rotated Fashion-MNIST: RotatedMNIST's angles on Fashion-MNIST."""

    def __init__(self, source: str = "fashion_mnist", **kwargs) -> None:
        super().__init__(source=source, **kwargs)
