"""Task streams and the datasets they yield."""

from retentive.data.batch import Batch
from retentive.data.cifar import SplitCIFAR10, SplitCIFAR100
from retentive.data.color_mnist import ColorMNIST
from retentive.data.decoy_mnist import DecoyMNIST
from retentive.data.split import SplitDigits, SplitFashionMNIST, SplitImages, SplitMNIST
from retentive.data.spurious_background import SpuriousBackgroundMNIST
from retentive.data.stream import SCENARIOS, TaskStream
from retentive.data.synthetic import SplitSyntheticStandIn
from retentive.data.task_dataset import TaskDataset, collate_batch
from retentive.data.transformed import (
    PermutedFashionMNIST,
    PermutedMNIST,
    RotatedFashionMNIST,
    RotatedMNIST,
)

__all__ = [
    "SCENARIOS",
    "Batch",
    "ColorMNIST",
    "DecoyMNIST",
    "PermutedFashionMNIST",
    "PermutedMNIST",
    "RotatedFashionMNIST",
    "RotatedMNIST",
    "SplitCIFAR10",
    "SplitCIFAR100",
    "SplitDigits",
    "SplitFashionMNIST",
    "SplitImages",
    "SplitMNIST",
    "SplitSyntheticStandIn",
    "SpuriousBackgroundMNIST",
    "TaskDataset",
    "TaskStream",
    "collate_batch",
]
