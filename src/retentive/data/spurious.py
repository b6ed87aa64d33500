"""Base of streams whose images carry a spurious, class-tied feature and a mask of where it is.

A subclass says how to paint the feature on MNIST (`paint`), differently for train (tied to the
label) and test (tied to another label, so a model that learnt the shortcut fails). The mask is
uint8 `[N, 1, H, W]`, 1 on the spurious region. With `class_groups` the same data is cut into a
sequence of tasks (one per group of digits), so explanation penalties combine with continual
strategies; by default the stream is one task with all ten digits.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

import torch
from torch import Tensor

from retentive.data.sources import ImageSplit, load_mnist
from retentive.data.split import check_groups
from retentive.data.stream import RawTask, TaskStream


def class_palette(num_classes: int = 10) -> Tensor:
    """CDEP's ColorMNIST colours: `num_classes` steps from red to purple in HLS, as uint8 RGB `[K, 3]`.

    Hue 0 -> 300 degrees and lightness 0.5 -> 0.25, saturation 1 (colour's `red.range_to(purple)`).
    """
    steps = [i / max(num_classes - 1, 1) for i in range(num_classes)]
    rgb = [colorsys.hls_to_rgb(s * 300 / 360, 0.5 - 0.25 * s, 1.0) for s in steps]
    return (torch.tensor(rgb) * 255).round().to(torch.uint8)


class SpuriousMNIST(TaskStream):
    """MNIST with a painted spurious feature; `paint(images, colour_labels, train)` -> (images, masks)."""

    def __init__(
        self,
        data_dir: str | None = None,
        class_groups: Sequence[Sequence[int]] | None = None,
        **kwargs,
    ) -> None:
        self.data_dir = data_dir
        self.class_groups = check_groups(class_groups or [list(range(10))], 10)
        super().__init__(**kwargs)

    def paint(self, images: Tensor, labels: Tensor, train: bool, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """uint8 `[N, 1, 28, 28]` digits -> (uint8 `[N, C, H, W]` images, uint8 `[N, 1, H, W]` masks)."""
        raise NotImplementedError

    def _painted(self, split: ImageSplit, train: bool) -> tuple[ImageSplit, Tensor]:
        generator = torch.Generator().manual_seed(self.seed * 7919 + int(train))
        images, masks = self.paint(split.images, split.labels, train, generator)
        return ImageSplit(images, split.labels), masks

    def build_tasks(self) -> list[RawTask]:
        train, train_masks = self._painted(load_mnist(self.data_dir, train=True), train=True)
        test, test_masks = self._painted(load_mnist(self.data_dir, train=False), train=False)
        tasks = []
        for group in self.class_groups:
            classes = torch.tensor(group)
            train_idx = torch.isin(train.labels, classes).nonzero().squeeze(1)
            test_idx = torch.isin(test.labels, classes).nonzero().squeeze(1)
            tasks.append(RawTask(
                name="/".join(str(c) for c in group),
                train=train.select(train_idx),
                test=test.select(test_idx),
                classes=tuple(group),
                masks_train=train_masks[train_idx],
                masks_test=test_masks[test_idx],
            ))
        return tasks
