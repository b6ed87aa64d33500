"""Split CIFAR-10 (5 tasks x 2 classes) and Split CIFAR-100 (10 tasks x 10 classes).

The protocol of van de Ven, Tuytelaars & Tolias (2022, "Three types of incremental learning",
Nature Machine Intelligence; code: GMvandeVen/continual-learning, `data/load.py`, `data/available.py`):
tasks of consecutive class ids, train/test sets as torchvision gives them, images scaled to [0, 1] and
normalised per channel with the constants below (the authors' code normalises CIFAR-100 only; it
permutes the class ids at random for every seed except seed 0, we keep the original order unless
`class_groups` says otherwise). Read with torchvision from `<data_dir>/cifar-10-batches-py` and
`<data_dir>/cifar-100-python`, downloaded there when online.
"""

from __future__ import annotations

from collections.abc import Sequence

from retentive.data.split import SplitImages

# per-channel mean / std of the training images, as in the authors' data/available.py
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2761)


class SplitCIFAR10(SplitImages):
    """Split CIFAR-10: 5 tasks of 2 classes (airplane/automobile, bird/cat, ...)."""

    cifar_source = "cifar10"
    default_num_tasks = 5
    channel_mean, channel_std = CIFAR10_MEAN, CIFAR10_STD

    def __init__(self, mean: float | Sequence[float] | None = None, std: float | Sequence[float] | None = None,
                 **kwargs) -> None:
        super().__init__(source=self.cifar_source, mean=self.channel_mean if mean is None else mean,
                         std=self.channel_std if std is None else std, **kwargs)


class SplitCIFAR100(SplitCIFAR10):
    """Split CIFAR-100: 10 tasks of 10 classes (ids 0-9, 10-19, ...)."""

    cifar_source = "cifar100"
    default_num_tasks = 10
    channel_mean, channel_std = CIFAR100_MEAN, CIFAR100_STD
