"""DataLoaders of a run: global batches, sharded over DDP processes without changing the protocol."""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Sampler, SequentialSampler

from retentive.data.task_dataset import TaskDataset, collate_batch


class SeededRandomSampler(Sampler[int]):
    """Uniform shuffling whose order is a function of (seed, epoch) alone, like DistributedSampler.

    Lightning calls `set_epoch` before every training epoch, so every DDP process draws the same
    order whatever else it did with the global RNG (Lightning re-seeds it in DDP processes), and a
    resumed run draws the order the uninterrupted run drew. `num_samples` larger than the dataset
    chains fresh permutations (iteration-based protocols), as torch's RandomSampler does.
    """

    def __init__(self, size: int, seed: int, num_samples: int | None = None) -> None:
        self.size = size
        self.seed = seed
        self.num_samples = size if num_samples is None else num_samples
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) % 2**63)
        for _ in range(self.num_samples // self.size):
            yield from torch.randperm(self.size, generator=generator).tolist()
        yield from torch.randperm(self.size, generator=generator)[: self.num_samples % self.size].tolist()

    def __len__(self) -> int:
        return self.num_samples


class Shard(list):
    """One process's indices of a global batch; `global_size` is the global batch's length."""

    global_size: int


class ShardedBatchSampler(Sampler[list[int]]):
    """Global batches of `batch_size` from `sampler`; each DDP process yields its slice of each.

    Every process draws the same global order (same seed, same RNG use), process r takes samples
    r, r+N, r+2N, ... of every global batch, and the batch remembers the global size, so the
    summed-then-divided loss of N processes equals one process's mean: `loader.batch_size` is the
    global batch whatever the number of processes, and nothing is padded or dropped. In one
    process the slices are the whole batches (`global_size` is None, the loss a plain mean).
    """

    def __init__(self, sampler: Sampler, batch_size: int) -> None:
        self.sampler = sampler
        self.batch_size = batch_size

    @staticmethod
    def _rank_world() -> tuple[int, int]:
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def __iter__(self) -> Iterator[list[int]]:
        rank, world = self._rank_world()
        batch: list[int] = []
        for index in self.sampler:
            batch.append(int(index))
            if len(batch) == self.batch_size:
                yield self._slice(batch, rank, world)
                batch = []
        if batch:
            yield self._slice(batch, rank, world)

    @staticmethod
    def _slice(batch: list[int], rank: int, world: int) -> list[int]:
        if world == 1:
            return batch
        shard = Shard(batch[rank::world])
        shard.global_size = len(batch)
        return shard

    def __len__(self) -> int:
        return -(-len(self.sampler) // self.batch_size)  # type: ignore[arg-type]


def make_loader(dataset: TaskDataset, batch_size: int, shuffle: bool, num_workers: int = 0,
                num_samples: int | None = None, sampler: Sampler | None = None, seed: int = 0) -> DataLoader:
    """Batched-fetch loader over global batches; `num_samples` fixes the epoch length
    (iteration-based protocols); `sampler` replaces uniform shuffling (a strategy's choice)."""
    if sampler is None:
        sampler = (SeededRandomSampler(len(dataset), seed, num_samples) if (shuffle or num_samples)
                   else SequentialSampler(dataset))
    return DataLoader(dataset, batch_sampler=ShardedBatchSampler(sampler, batch_size), num_workers=num_workers,
                      collate_fn=collate_batch, persistent_workers=num_workers > 0)


def plain_loader(dataset: TaskDataset, batch_size: int, num_workers: int = 0) -> DataLoader:
    """In-order loader that every process iterates in full (strategies' task-end statistics)."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=collate_batch)
