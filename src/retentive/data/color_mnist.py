"""ColorMNIST (CDEP, Rieger et al. 2020): every digit tinted with a colour tied to its class."""

from __future__ import annotations

import torch
from torch import Tensor

from retentive.data.sources import ImageSplit, load_mnist
from retentive.data.spurious import SpuriousMNIST, class_palette
from retentive.data.stream import RawTask
from retentive.data.task_dataset import TaskDataset
from retentive.errors import ConfigError

VAL_COLOURS = ("train", "test")


class ColorMNIST(SpuriousMNIST):
    """Train/val: class y in colour y; test: class y in colour 9 - y, so colour alone gets ~0%.

    Images are `[N, 3, 28, 28]` (the digit's intensity times its RGB colour). The spurious feature
    is the colour, which lives in every stroke pixel but is visible in each pixel on its own, while
    the shape needs several pixels together. The mask therefore marks the stroke pixels (`digit > 0`)
    and CDEP penalises them one pixel at a time (`explanation.pixel_blobs`, as in the paper), which
    penalises colour and leaves shape alone.

    Options for the authors' protocol (defaults keep the behaviour above):
    `val_colours="test"` colours the validation split like the test split (colour 9 - y), as the
    authors' `00_make_data.py` does; their early stopping therefore looks at the test distribution.
    `standardize=True` standardises every channel with the mean and std of the training split (all
    tasks' train images), as the authors' `train.py` does, applied to train, val and test.
    """

    def __init__(self, val_colours: str = "train", standardize: bool = False, **kwargs) -> None:
        if val_colours not in VAL_COLOURS:
            raise ConfigError("dataset.val_colours", f"'{val_colours}' is not a colouring", "choose train or test")
        if standardize and (kwargs.get("mean", 0.0) != 0.0 or kwargs.get("std", 1.0) != 1.0):
            raise ConfigError("dataset.standardize", "true together with dataset.mean/std",
                              "drop mean/std (standardize computes them from the train split)")
        self.val_colours = val_colours
        self.standardize = standardize
        self._grey_train: list[ImageSplit] = []
        super().__init__(**kwargs)
        if standardize:
            self._standardize()

    def paint(self, images: Tensor, labels: Tensor, train: bool, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        palette = class_palette(10).float()
        colours = palette[labels if train else 9 - labels]  # [N, 3]
        tinted = images.float() * colours.view(-1, 3, 1, 1) / 255.0
        masks = (images > 0).to(torch.uint8)
        return tinted.round().to(torch.uint8), masks

    def build_tasks(self) -> list[RawTask]:
        tasks = super().build_tasks()
        if self.val_colours == "test":  # keep the grey digits so the val split can be painted like test
            grey = load_mnist(self.data_dir, train=True)
            for task in tasks:
                self._grey_train.append(grey.select(torch.isin(grey.labels, torch.tensor(task.classes)).nonzero().squeeze(1)))
        return tasks

    def _split_task(self, task: int, raw: RawTask) -> tuple[TaskDataset, TaskDataset, TaskDataset]:
        train, val, test = super()._split_task(task, raw)
        if self.val_colours == "test":
            _, val_idx, _ = self._split_indices(task, raw)
            grey = self._grey_train[task].select(val_idx)
            images, masks = self.paint(grey.images, grey.labels, False, torch.Generator())
            val = self._dataset(task, ImageSplit(images, grey.labels), masks, torch.arange(len(val_idx)))
        return train, val, test

    def _standardize(self) -> None:
        """Per-channel mean/std of the train split (on [0, 1] intensities), set on every split."""
        total, total_sq, count = torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64), 0
        for t in range(self.num_tasks):
            images = self.train(t).images
            for chunk in images.split(8192):
                x = chunk.to(torch.float64) / 255.0
                total += x.sum(dim=(0, 2, 3))
                total_sq += (x * x).sum(dim=(0, 2, 3))
                count += x.shape[0] * x.shape[2] * x.shape[3]
        mean = total / count
        std = (total_sq / count - mean * mean).clamp_min(1e-12).sqrt()
        self.mean, self.std = mean.float().view(3, 1, 1), std.float().view(3, 1, 1)
        for splits in self._splits:
            for dataset in splits:
                dataset.mean, dataset.std = self.mean, self.std
