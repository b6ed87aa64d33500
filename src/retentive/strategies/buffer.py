"""ReservoirBuffer: a fixed-size memory of stream samples for replay.

Reservoir sampling (Vitter's algorithm R) keeps every sample seen so far with the same probability
capacity / seen, without knowing the stream length or the task boundaries, so `capacity` is the
total budget, not a per-task one. All randomness comes from the buffer's own seeded generator: the
global RNG (data order, dropout) is not disturbed, and the generator state is part of
`state_dict`, so a resumed run stores and draws exactly what the uninterrupted run would.
"""

from __future__ import annotations

import torch
from torch import Tensor

from retentive.data.batch import Batch
from retentive.errors import ConfigError

MODES = ("reservoir", "class_balanced", "task_balanced", "task_class_balanced")
FIELDS = ("x", "y", "t", "index")


class ReservoirBuffer:
    """Up to `capacity` samples (x as float32, y, t, index) on the CPU.

    `mode="class_balanced"` fills the buffer, then lets a sample in only if its class holds fewer
    samples than the largest class, evicting a random sample of a largest class (GDumb's greedy
    sampler, Prabhu et al. 2020): classes end up equally represented however unbalanced the stream.
    `mode="task_balanced"` does the same with task ids: every task seen keeps an equal share (Hsu et
    al. 2018's memory). Where tasks share their labels (Domain-IL, Task-IL with per-task labels 0..k),
    class_balanced freezes once full — no new class ever arrives — so use task_balanced there.
    `mode="task_class_balanced"` balances (task, class) pairs: class_balanced in Class-IL, and an
    equal share per class of every task where labels repeat (GDumb beyond Class-IL).
    """

    def __init__(self, capacity: int, seed: int = 0, mode: str = "reservoir") -> None:
        if not isinstance(capacity, int) or capacity < 1:
            raise ConfigError("strategy.buffer_size", f"must be an integer >= 1, got {capacity!r}")
        if mode not in MODES:
            raise ConfigError("strategy.buffer_mode", f"unknown mode {mode!r}", f"choose one of {', '.join(MODES)}")
        self.capacity = capacity
        self.mode = mode
        self.seen = 0  # stream samples offered so far
        self.size = 0  # samples stored
        self.generator = torch.Generator().manual_seed(seed)
        self._pending: dict[str, Tensor] = {}
        self.data: dict[str, Tensor] = {}
        self.extras: dict[str, Tensor] = {}  # per-sample tensors a method stores beside x (logits, maps)

    def __len__(self) -> int:
        return self.size

    @property
    def nbytes(self) -> int:
        return sum(v.nbytes for v in [*self.data.values(), *self.extras.values()])

    def _allocate(self, like: Tensor) -> None:
        self.data = {"x": torch.zeros((self.capacity, *like.shape[1:]), dtype=torch.float32)}
        self.data.update({k: torch.full((self.capacity,), -1, dtype=torch.long) for k in FIELDS[1:]})

    def _write(self, slots: Tensor, batch: Batch, rows: Tensor) -> None:
        index = batch.index if batch.index is not None else torch.full_like(batch.y, -1)
        for key, value in zip(FIELDS, (batch.x, batch.y, batch.t, index), strict=True):
            self.data[key][slots] = value[rows.to(value.device)].detach().to("cpu", self.data[key].dtype)
        for key, value in self._pending.items():
            if key not in self.extras:
                self.extras[key] = torch.zeros((self.capacity, *value.shape[1:]), dtype=torch.float32)
            self.extras[key][slots] = value[rows.to(value.device)].detach().to("cpu", torch.float32)

    def add(self, batch: Batch, **extras: Tensor) -> None:
        """Offer every sample of `batch` to the buffer, in order; `extras` are per-sample tensors
        (`[len(batch), ...]`, e.g. DER's logits or a stored explanation map) kept with each sample."""
        n = len(batch)
        if n == 0:
            return
        if not self.data:
            self._allocate(batch.x)
        self._pending = extras
        if self.mode != "reservoir":
            self._add_balanced(batch)
            return
        i = self.seen + torch.arange(n)  # 0-based stream position of each sample
        j = (torch.rand(n, generator=self.generator, dtype=torch.float64) * (i + 1)).long().minimum(i)
        slot = torch.where(i < self.capacity, i, j)  # algorithm R: the i-th sample replaces slot j < capacity
        rows = (slot < self.capacity).nonzero().squeeze(1)
        if len(rows):
            # several samples of one batch may hit the same slot: the later one wins, as in a sequential loop
            slots, inverse = torch.unique(slot[rows], return_inverse=True)
            last = torch.full((len(slots),), -1, dtype=torch.long).scatter_reduce(0, inverse, rows, "amax")
            self._write(slots, batch, last)
        self.seen += n
        self.size = min(self.seen, self.capacity)

    def _groups(self, y: Tensor, t: Tensor) -> Tensor:
        """The group each sample is balanced in: its class, its task, or the (task, class) pair."""
        if self.mode == "class_balanced":
            return y
        return t if self.mode == "task_balanced" else t * (1 << 20) + y

    def _add_balanced(self, batch: Batch) -> None:
        groups = self._groups(batch.y.detach().cpu(), batch.t.detach().cpu())
        for row in range(len(groups)):
            self.seen += 1
            if self.size < self.capacity:
                slot = self.size
                self.size += 1
            else:
                stored = self._groups(self.data["y"], self.data["t"])
                values, counts = torch.unique(stored, return_counts=True)
                own = counts[values == groups[row]]
                if (own[0] if len(own) else 0) + 1 >= counts.max():
                    continue  # its group is already (one of) the largest
                largest = (stored == values[counts.argmax()]).nonzero().squeeze(1)
                slot = int(largest[torch.randint(len(largest), (1,), generator=self.generator)])
            self._write(torch.tensor([slot]), batch, torch.tensor([row]))

    def sample(self, n: int) -> Batch:
        """min(n, len) stored samples, uniformly without replacement."""
        return self.draw(n)[0]

    def draw(self, n: int) -> tuple[Batch, dict[str, Tensor]]:
        """min(n, len) stored samples, uniformly without replacement, with their extras."""
        if self.size == 0:
            raise ValueError("sample() from an empty buffer")
        rows = torch.randperm(self.size, generator=self.generator)[: min(n, self.size)]
        d = self.data
        return (Batch(d["x"][rows], d["y"][rows], d["t"][rows], None, d["index"][rows]),
                {k: v[rows] for k, v in self.extras.items()})

    def stored(self) -> Batch:
        """Every stored sample, in slot order (inspection, tests)."""
        d = {k: v[: self.size] for k, v in self.data.items()}
        return Batch(d["x"], d["y"], d["t"], None, d["index"])

    def state_dict(self) -> dict:
        """Settings, counters, the generator state and the stored samples (tensors only: weights-only loadable)."""
        stored = {k: (self.data[k][: self.size].clone() if self.data else None) for k in FIELDS}
        return {"capacity": self.capacity, "mode": self.mode, "seen": self.seen, "size": self.size,
                "generator": self.generator.get_state(), **stored,
                "extras": {k: v[: self.size].clone() for k, v in self.extras.items()}}

    def load_state_dict(self, state: dict) -> None:
        if state["capacity"] != self.capacity or state["mode"] != self.mode:
            raise ConfigError("strategy.buffer_size", f"the checkpoint's buffer is {state['mode']} of "
                              f"{state['capacity']}, this run's {self.mode} of {self.capacity}",
                              "resume with the run's own buffer settings")
        self.seen, self.size = int(state["seen"]), int(state["size"])
        self.generator.set_state(state["generator"])
        self.data = {}
        if state["x"] is not None:
            self._allocate(state["x"])
            for key in FIELDS:
                self.data[key][: self.size] = state[key]
        self.extras = {}
        for key, value in state.get("extras", {}).items():
            self.extras[key] = torch.zeros((self.capacity, *value.shape[1:]), dtype=torch.float32)
            self.extras[key][: self.size] = value
