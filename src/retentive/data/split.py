"""Split streams: each task holds a disjoint group of classes (Split MNIST, Split digits)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from retentive.data.sources import ImageSplit, load_digits_split, load_mnist
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

    def __init__(self, class_groups: Sequence[Sequence[int]] | None = None, **kwargs) -> None:
        groups = class_groups or [[2 * i, 2 * i + 1] for i in range(5)]
        self.class_groups = check_groups(groups, self.num_classes)
        super().__init__(**kwargs)

    def sources(self) -> tuple[ImageSplit, ImageSplit]:
        raise NotImplementedError

    def build_tasks(self) -> list[RawTask]:
        train, test = self.sources()
        return split_by_classes(train, test, self.class_groups)


class SplitMNIST(SplitStream):
    """Split MNIST: 5 tasks of 2 digits (0/1, 2/3, ...)."""

    def __init__(self, data_dir: str | None = None, **kwargs) -> None:
        self.data_dir = data_dir
        super().__init__(**kwargs)

    def sources(self) -> tuple[ImageSplit, ImageSplit]:
        return load_mnist(self.data_dir, train=True), load_mnist(self.data_dir, train=False)


class SplitDigits(SplitStream):
    """Split digits: scikit-learn's bundled 8x8 digits in 5 tasks of 2 (offline tests and demos)."""

    def sources(self) -> tuple[ImageSplit, ImageSplit]:
        return load_digits_split(train=True), load_digits_split(train=False)
