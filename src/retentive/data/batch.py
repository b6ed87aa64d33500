"""Batch: what every training/evaluation step receives, by name instead of by position."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor


@dataclass
class Batch:
    """A batch of one or more tasks' samples.

    - `x`: float32 `[N, C, H, W]`, scaled/normalised; `y`: int64 labels in the head's label space;
    - `t`: int64 task id per sample; `mask`: float32 `[N, 1|C, H, W]`, 1 where the model should not
      look (spurious region), or None; `index`: int64 position of each sample in its task's split
      (what a replay buffer or a logit store keys on), or None;
    - `global_size`: samples in the *global* batch this one is a shard of (DDP), or None when the
      batch is the whole global batch. The module divides summed losses by it so N processes
      follow the same protocol as one.
    """

    x: Tensor
    y: Tensor
    t: Tensor
    mask: Tensor | None = None
    index: Tensor | None = None
    global_size: int | None = None

    def __len__(self) -> int:
        return len(self.y)

    def __iter__(self) -> Iterator[Tensor]:
        """Unpacks like the old positional tuples, `x, y, t[, mask]` (scripts and notebooks)."""
        yield from (self.x, self.y, self.t) if self.mask is None else (self.x, self.y, self.t, self.mask)

    def to(self, device: torch.device | str) -> Batch:
        def move(value: Tensor | None) -> Tensor | None:
            return None if value is None else value.to(device)

        return replace(self, x=move(self.x), y=move(self.y), t=move(self.t), mask=move(self.mask),
                       index=move(self.index))

    def select(self, rows: Tensor | slice) -> Batch:
        """The samples at `rows` (a whole batch again, not a shard)."""

        def pick(value: Tensor | None) -> Tensor | None:
            return None if value is None else value[rows]

        return Batch(self.x[rows], self.y[rows], self.t[rows], pick(self.mask), pick(self.index))

    @staticmethod
    def cat(batches: Sequence[Batch]) -> Batch:
        """Samples of several batches in one (e.g. current data + replayed samples)."""

        def join(values: list[Tensor | None]) -> Tensor | None:
            return None if any(v is None for v in values) else torch.cat(values)  # type: ignore[arg-type]

        return Batch(torch.cat([b.x for b in batches]), torch.cat([b.y for b in batches]),
                     torch.cat([b.t for b in batches]), join([b.mask for b in batches]),
                     join([b.index for b in batches]))

    @staticmethod
    def of(value: Batch | Sequence[Tensor]) -> Batch:
        """A Batch from a Batch or from a positional `(x, y, t[, mask])` tuple (plain TensorDatasets)."""
        if isinstance(value, Batch):
            return value
        x, y, t, *rest = value
        return Batch(x, y, t, rest[0] if rest else None)
