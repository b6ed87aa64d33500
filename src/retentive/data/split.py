"""Split streams: each task holds a disjoint group of classes (Split MNIST / Fashion-MNIST, Split digits)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from retentive.data.sources import ImageSplit, load_digits_split, load_torchvision, source_info
from retentive.data.stream import RawTask, TaskStream
from retentive.errors import ConfigError


def split_by_classes(train: ImageSplit, test: ImageSplit, groups: Sequence[Sequence[int]]) -> list[RawTask]:
    """One RawTask per group of original labels."""
    tasks = []
    for group in groups:
        classes = torch.tensor(list(group))
        tasks.append(
            RawTask(
                name="/".join(str(c) for c in group),
                train=train.select(torch.isin(train.labels, classes).nonzero().squeeze(1)),
                test=test.select(torch.isin(test.labels, classes).nonzero().squeeze(1)),
                classes=tuple(int(c) for c in group),
            )
        )
    return tasks


def consecutive_groups(num_classes: int, num_tasks: int) -> list[list[int]]:
    """`num_tasks` groups of consecutive labels (0/1, 2/3, ... for 10 classes in 5 tasks)."""
    if num_tasks < 1 or num_classes % num_tasks:
        raise ConfigError("dataset.num_tasks", f"{num_tasks} does not divide {num_classes} classes into equal tasks")
    size = num_classes // num_tasks
    return [list(range(start, start + size)) for start in range(0, num_classes, size)]


def channel_stat(value: float | Sequence[float]) -> float | Tensor:
    """A scalar stays a scalar; a per-channel list becomes a `[C, 1, 1]` tensor that broadcasts over images."""
    if isinstance(value, int | float):
        return float(value)
    return torch.tensor([float(v) for v in value]).view(-1, 1, 1)


def check_groups(groups: Sequence[Sequence[int]], num_classes: int) -> list[list[int]]:
    flat = [int(c) for group in groups for c in group]
    if len(flat) != len(set(flat)) or not all(0 <= c < num_classes for c in flat):
        raise ConfigError(
            "dataset.class_groups",
            f"{[list(g) for g in groups]} must be disjoint groups of labels in 0..{num_classes - 1}",
        )
    return [list(g) for g in groups]


class SplitStream(TaskStream):
    """Base of split streams; subclasses give the source."""

    num_classes = 10
    default_num_tasks = 5  # tasks of consecutive labels when no class_groups are given

    def __init__(self, class_groups: Sequence[Sequence[int]] | None = None, **kwargs) -> None:
        groups = class_groups or consecutive_groups(self.num_classes, self.default_num_tasks)
        self.class_groups = check_groups(groups, self.num_classes)
        super().__init__(**kwargs)

    def sources(self) -> tuple[ImageSplit, ImageSplit]:
        raise NotImplementedError

    def build_tasks(self) -> list[RawTask]:
        train, test = self.sources()
        return split_by_classes(train, test, self.class_groups)


class SplitImages(SplitStream):
    """A split stream over a torchvision source (`sources.SOURCES`: mnist, fashion_mnist, cifar10, cifar100).

    `mean`/`std` may be per channel (lists); images are scaled to [0, 1] before normalising.
    `pad` adds a zero border of that many pixels (2: MNIST 28x28 -> 32x32, as Hsu et al. 2018).
    """

    def __init__(self, source: str = "mnist", data_dir: str | None = None, mean: float | Sequence[float] = 0.0,
                 std: float | Sequence[float] = 1.0, pad: int = 0, **kwargs) -> None:
        if pad < 0:
            raise ConfigError("dataset.pad", f"{pad} must be >= 0", "use 0 (28x28) or 2 (32x32, as Hsu et al. 2018)")
        self.pad = pad
        self.source = source
        self.num_classes = source_info(source).num_classes
        self.data_dir = data_dir
        super().__init__(mean=channel_stat(mean), std=channel_stat(std), **kwargs)

    def sources(self) -> tuple[ImageSplit, ImageSplit]:
        splits = (load_torchvision(self.source, self.data_dir, train=True),
                  load_torchvision(self.source, self.data_dir, train=False))
        if not self.pad:
            return splits
        return tuple(ImageSplit(torch.nn.functional.pad(s.images, (self.pad,) * 4), s.labels)  # type: ignore[return-value]
                     for s in splits)


class SplitMNIST(SplitImages):
    """Split MNIST: 5 tasks of 2 digits (0/1, 2/3, ...)."""

    def __init__(self, source: str = "mnist", **kwargs) -> None:
        super().__init__(source=source, **kwargs)


class SplitFashionMNIST(SplitImages):
    """Split Fashion-MNIST: 5 tasks of 2 clothing classes (T-shirt/trouser, pullover/dress, ...)."""

    def __init__(self, source: str = "fashion_mnist", **kwargs) -> None:
        super().__init__(source=source, **kwargs)


class SplitDigits(SplitStream):
    """Split digits: scikit-learn's bundled 8x8 digits in 5 tasks of 2 (offline tests and demos)."""

    def sources(self) -> tuple[ImageSplit, ImageSplit]:
        return load_digits_split(train=True), load_digits_split(train=False)
