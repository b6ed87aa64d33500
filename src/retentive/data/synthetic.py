"""A synthetic stand-in with CIFAR's shape (uint8 [N, 3, 32, 32], 10 or 100 classes): NOT CIFAR data.

CIFAR cannot be downloaded on machines without internet, so the Split CIFAR streams' code path
(class groups, per-channel normalisation, scenario heads) is exercised on this stand-in instead.
Its numbers say nothing about CIFAR; every name it produces (stream class, task names, config)
says "stand-in".

Each class has a prototype: a random 4x4 colour grid upsampled to 32x32. A sample mixes its class
prototype (share `signal`, default 0.3) with a random per-sample nuisance grid (also 4x4 upsampled),
times a random brightness, plus pixel noise: learnable but not trivially separable (a logistic
regression on 200 training images per class reaches 86 % on the 10-class stand-in's test images,
51 % with 40 per class on the 100-class one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache

import torch
from torch import Tensor
from torch.nn.functional import interpolate

from retentive.data.cifar import SplitCIFAR10, SplitCIFAR100
from retentive.data.sources import ImageSplit
from retentive.data.split import SplitStream, channel_stat
from retentive.data.stream import RawTask
from retentive.errors import ConfigError

# the Split CIFAR protocol each stand-in mimics (classes, tasks, normalisation constants)
PROTOCOLS: dict[str, type[SplitCIFAR10]] = {"cifar10": SplitCIFAR10, "cifar100": SplitCIFAR100}
NUM_CLASSES = {"cifar10": 10, "cifar100": 100}


def _grids(count: int, generator: torch.Generator, cells: int = 4, size: int = 32) -> Tensor:
    """`count` random colour grids of `cells` x `cells`, bilinearly upsampled to `size` x `size`, in [0, 1]."""
    coarse = torch.rand(count, 3, cells, cells, generator=generator)
    return interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)


@lru_cache(maxsize=8)
def synthetic_standin(num_classes: int, per_class: int, data_seed: int, train: bool,
                      signal: float = 0.3) -> ImageSplit:
    """`per_class` stand-in images of each of `num_classes` classes (train and test share prototypes)."""
    prototypes = _grids(num_classes, torch.Generator().manual_seed(data_seed))
    generator = torch.Generator().manual_seed(data_seed * 2 + (1 if train else 2) + 1_000_003)
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    nuisance = _grids(len(labels), generator)
    brightness = 0.8 + 0.4 * torch.rand(len(labels), 1, 1, 1, generator=generator)
    noise = 0.08 * torch.randn(len(labels), 3, 32, 32, generator=generator)
    images = (signal * prototypes[labels] + (1 - signal) * nuisance) * brightness + noise
    return ImageSplit((images.clamp(0, 1) * 255).round().to(torch.uint8), labels)


class SplitSyntheticStandIn(SplitStream):
    """Split stream on the synthetic stand-in, with the task layout of Split CIFAR-10 (`like: cifar10`,
    5 tasks x 2 classes) or Split CIFAR-100 (`like: cifar100`, 10 tasks x 10 classes). Not CIFAR."""

    def __init__(self, like: str = "cifar10", train_per_class: int = 200, test_per_class: int = 50,
                 data_seed: int = 0, signal: float = 0.3, mean: float | Sequence[float] | None = None,
                 std: float | Sequence[float] | None = None, **kwargs) -> None:
        if like not in PROTOCOLS:
            raise ConfigError("dataset.like", f"unknown protocol '{like}'", f"choose one of {', '.join(PROTOCOLS)}")
        if train_per_class < 1 or test_per_class < 1:
            raise ConfigError("dataset.train_per_class", "train_per_class and test_per_class must be >= 1")
        if not 0.0 < signal <= 1.0:
            raise ConfigError("dataset.signal", f"{signal} is outside (0, 1]", "0.3 is the default")
        protocol = PROTOCOLS[like]
        self.like = like
        self.num_classes = NUM_CLASSES[like]
        self.default_num_tasks = protocol.default_num_tasks
        self.train_per_class, self.test_per_class, self.data_seed = train_per_class, test_per_class, data_seed
        self.signal = signal
        super().__init__(mean=channel_stat(protocol.channel_mean if mean is None else mean),
                         std=channel_stat(protocol.channel_std if std is None else std), **kwargs)

    def sources(self) -> tuple[ImageSplit, ImageSplit]:
        return (synthetic_standin(self.num_classes, self.train_per_class, self.data_seed, True, self.signal),
                synthetic_standin(self.num_classes, self.test_per_class, self.data_seed, False, self.signal))

    def build_tasks(self) -> list[RawTask]:
        return [replace(task, name=f"standin:{task.name}") for task in super().build_tasks()]

    def describe(self) -> str:
        return f"synthetic stand-in (not CIFAR), {self.like} layout: " + super().describe()
