"""In-memory task datasets that hand whole batches to the DataLoader at once."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset

from retentive.data.batch import Batch


class TaskDataset(Dataset):
    """uint8 images + labels of one task; yields `Batch(x, y, t, mask, index)`.

    Images stay uint8 (4x less memory than float, which matters for 10+ permuted copies of MNIST)
    and are scaled to float per batch. `__getitems__` lets `torch.utils.data.DataLoader` fetch a
    whole batch with one indexing op instead of one Python call per sample.
    """

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        task_id: int | Tensor,
        masks: Tensor | None = None,
        mean: float = 0.0,
        std: float = 1.0,
        sample_ids: Tensor | None = None,
    ) -> None:
        if images.dtype != torch.uint8:
            raise TypeError(f"TaskDataset expects uint8 images, got {images.dtype}")
        if images.ndim != 4:
            raise ValueError(f"TaskDataset expects [N, C, H, W] images, got shape {tuple(images.shape)}")
        if len(images) != len(labels):
            raise ValueError("images and labels differ in length")
        self.images = images
        self.labels = labels.long()
        self.task_ids = (
            task_id.long() if isinstance(task_id, Tensor) else torch.full_like(self.labels, task_id)
        )
        self.masks = masks
        # position of each sample in the split it came from (kept through subset/concat)
        self.sample_ids = torch.arange(len(self.labels)) if sample_ids is None else sample_ids.long()
        self.mean = mean
        self.std = std

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def has_masks(self) -> bool:
        return self.masks is not None

    def _batch(self, index: Tensor | int, global_size: int | None = None) -> Batch:
        x = (self.images[index].float() / 255.0 - self.mean) / self.std
        mask = None if self.masks is None else self.masks[index].float()
        return Batch(x, self.labels[index], self.task_ids[index], mask, self.sample_ids[index], global_size)

    def __getitem__(self, index: int) -> Batch:
        return self._batch(index)

    def __getitems__(self, indices: Sequence[int]) -> Batch:
        """A whole batch with one indexing op; a DDP shard's index list carries `global_size`."""
        return self._batch(torch.as_tensor(list(indices), dtype=torch.long), getattr(indices, "global_size", None))

    def batch(self, indices: Sequence[int] | Tensor | None = None) -> Batch:
        """The samples at `indices` (all when None) as one Batch (tests, probes, notebooks)."""
        if indices is None:
            indices = torch.arange(len(self))
        return self._batch(torch.as_tensor(indices, dtype=torch.long))

    def subset(self, indices: Tensor) -> TaskDataset:
        """A TaskDataset over `indices` (views, no copy of the whole task)."""
        masks = None if self.masks is None else self.masks[indices]
        return TaskDataset(self.images[indices], self.labels[indices], self.task_ids[indices], masks, self.mean,
                           self.std, self.sample_ids[indices])

    @staticmethod
    def concat(parts: Sequence[TaskDataset]) -> TaskDataset:
        """Union of task datasets (joint training), keeping each sample's own task id."""
        first = parts[0]
        masks = None if first.masks is None else torch.cat([p.masks for p in parts])
        return TaskDataset(
            torch.cat([p.images for p in parts]),
            torch.cat([p.labels for p in parts]),
            torch.cat([p.task_ids for p in parts]),
            masks,
            first.mean,
            first.std,
            torch.cat([p.sample_ids for p in parts]),
        )


def collate_batch(batch: Batch | tuple[Tensor, ...] | list) -> Batch | tuple[Tensor, ...]:
    """DataLoader collate for datasets whose `__getitems__` already returns a batch."""
    if isinstance(batch, Batch | tuple):
        return batch
    if batch and isinstance(batch[0], Batch):  # per-sample fetches (a dataset without __getitems__)
        def stack(values: list) -> Tensor | None:
            return None if values[0] is None else torch.stack(values)

        return Batch(*(stack([getattr(b, f) for b in batch]) for f in ("x", "y", "t", "mask", "index")))
    return tuple(torch.stack(parts) for parts in zip(*batch, strict=True))
