"""The fixed, seeded sample of a task's test set that probes and drift explain after every task."""

from __future__ import annotations

import torch

from retentive.data.batch import Batch
from retentive.data.task_dataset import TaskDataset


def fixed_sample(dataset: TaskDataset, size: int, seed: int = 0) -> Batch:
    """`size` test samples chosen by `seed` alone, so the same images are explained after every task
    (and after a resume); sorted indices keep a figure's rows in a stable order."""
    n = min(size, len(dataset))
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(len(dataset), generator=generator)[:n].sort().values
    return dataset.batch(chosen)
