"""Task streams and the datasets they yield."""

from retentive.data.batch import Batch
from retentive.data.color_mnist import ColorMNIST
from retentive.data.decoy_mnist import DecoyMNIST
from retentive.data.split import SplitDigits, SplitMNIST
from retentive.data.spurious_background import SpuriousBackgroundMNIST
from retentive.data.stream import SCENARIOS, TaskStream
from retentive.data.task_dataset import TaskDataset, collate_batch
from retentive.data.transformed import PermutedMNIST, RotatedMNIST

__all__ = [
    "SCENARIOS",
    "Batch",
    "ColorMNIST",
    "DecoyMNIST",
    "PermutedMNIST",
    "RotatedMNIST",
    "SplitDigits",
    "SplitMNIST",
    "SpuriousBackgroundMNIST",
    "TaskDataset",
    "TaskStream",
    "collate_batch",
]
