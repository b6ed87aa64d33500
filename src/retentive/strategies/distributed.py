"""Summing importance statistics over processes, so N DDP ranks give one process's Ω."""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import DataLoader, DistributedSampler


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def all_reduce_sums(sums: dict[str, Tensor], count: int) -> tuple[dict[str, Tensor], int]:
    """Add every process's per-parameter sums and example count (a no-op in one process).

    Sums (not means) are reduced, so ranks holding different numbers of examples still give the
    exact mean over all examples. One flat buffer means one collective call, not one per tensor.
    """
    if not is_distributed():
        return sums, count
    names = list(sums)
    flat = torch.cat([sums[n].reshape(-1).double() for n in names] + [torch.tensor([float(count)], dtype=torch.float64,
                                                                                    device=sums[names[0]].device)])
    if dist.get_backend() == "nccl" and flat.device.type != "cuda":
        flat = flat.cuda()
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    out, offset = {}, 0
    for name in names:
        size = sums[name].numel()
        out[name] = flat[offset: offset + size].reshape(sums[name].shape).to(sums[name].dtype).to(sums[name].device)
        offset += size
    return out, int(round(flat[-1].item()))


def local_batches(batches: Iterable) -> Iterable:
    """This process's share of a loader that every process iterates in full (the runner's
    task-end loader): batch i goes to rank i mod world. Loaders that are already sharded by a
    DistributedSampler, and plain iterables of batches, are used as they are."""
    if not is_distributed() or not isinstance(batches, DataLoader) or isinstance(batches.sampler, DistributedSampler):
        return batches
    rank, world = dist.get_rank(), dist.get_world_size()
    return (batch for i, batch in enumerate(batches) if i % world == rank)
