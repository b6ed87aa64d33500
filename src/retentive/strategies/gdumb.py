"""GDumb: Greedy sampler and Dumb learner (Prabhu, Torr & Dokania 2020, ECCV).

The stream is never trained on: a greedy sampler keeps a class-balanced memory of `buffer_size`
samples, and a network is trained from scratch on the memory alone whenever it has to answer.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset, Sampler

from retentive.data.batch import Batch
from retentive.data.loaders import SeededRandomSampler
from retentive.data.stream import TaskStream
from retentive.errors import ConfigError
from retentive.strategies.base import Strategy
from retentive.strategies.buffer import ReservoirBuffer

CHUNK = 1024  # samples offered to the memory at a time (the stream's order, one by one inside)


class MemoryDataset(Dataset):
    """The memory's samples (already float and normalised) as a training set of whole batches."""

    def __init__(self, samples: Batch) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Batch:
        return self.samples.select(index)

    def __getitems__(self, indices: Sequence[int]) -> Batch:
        rows = torch.as_tensor(list(indices), dtype=torch.long)
        return replace(self.samples.select(rows), global_size=getattr(indices, "global_size", None))


class GDumb(Strategy):
    """Train on the class-balanced memory only, from a fresh initialisation at every task.

    Protocol for task t (the runner's hooks, in order):

    - `train_dataset`: the memory absorbs the task's training data once, in the stream's order,
      with `ReservoirBuffer(mode="task_class_balanced")` (GDumb's greedy sampler: a sample enters while
      there is room, or when its class is smaller than the largest, evicting a random sample of a
      largest class; classes of different tasks count apart, so Domain-IL's repeated labels keep
      every task); the task trains on the memory's contents only, never on the stream.
    - `train_sampler`: each epoch draws `samples_per_epoch` samples from the memory (repeated
      shuffles; null: as many as the task's training set holds, so the run takes exactly the
      optimizer steps that training on the stream would); an iteration-based schedule
      (`schedule.steps_per_task`) fixes the count instead.
    - `on_task_start` (t > 0, `reinit`): every layer of the net is re-initialised (seeded by
      `seed` and t), so the net that answers after task t is trained from scratch on the memory,
      as in the paper; `reinit=false` keeps training the same net (a warm start).
    - `eval_logits`: the net's outputs with the classes absent from the memory masked to −inf
      (the paper's class mask at inference).

    The module's cross-entropy on the memory batch is the whole training loss (`loss` adds 0).
    Single-head nets only (Class-IL, Domain-IL): the memory balances labels, which repeat across
    a multi-head net's tasks.
    """

    def __init__(self, buffer_size: int = 500, samples_per_epoch: int | None = None, reinit: bool = True,
                 seed: int = 0) -> None:
        if samples_per_epoch is not None and (isinstance(samples_per_epoch, bool)
                                              or not isinstance(samples_per_epoch, int) or samples_per_epoch < 1):
            raise ConfigError("strategy.samples_per_epoch", f"must be an integer >= 1 or null, got "
                              f"{samples_per_epoch!r}", "null draws as many samples as the task's training set")
        if not isinstance(reinit, bool):
            raise ConfigError("strategy.reinit", f"must be true or false, got {reinit!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError("strategy.seed", f"must be an integer, got {seed!r}")
        self.buffer = ReservoirBuffer(buffer_size, seed, "task_class_balanced")
        self.samples_per_epoch = samples_per_epoch
        self.reinit = reinit
        self.seed = seed
        self.tasks_absorbed = 0  # tasks whose training data the memory has seen
        self._task_size = 0  # the current task's training-set size (not state: train_dataset sets it)

    def setup(self, net: nn.Module) -> None:
        if getattr(net, "multihead", False):
            raise ConfigError("dataset.scenario", "GDumb keeps a memory balanced over labels, which repeat "
                              "across the tasks of a multi-head (Task-IL) net",
                              "use dataset.scenario=class or domain (one shared head)")

    def train_dataset(self, task_id: int, stream: TaskStream) -> MemoryDataset:
        data = stream.train(task_id)
        if self.tasks_absorbed <= task_id:  # not again when a run resumes inside the task
            for start in range(0, len(data), CHUNK):
                self.buffer.add(data.batch(torch.arange(start, min(start + CHUNK, len(data)))))
            self.tasks_absorbed = task_id + 1
        self._task_size = len(data)
        return MemoryDataset(self.buffer.stored())

    def train_sampler(self, task_id: int, dataset: MemoryDataset, num_samples: int | None) -> Sampler:
        count = num_samples or self.samples_per_epoch or self._task_size or len(dataset)
        return SeededRandomSampler(len(dataset), self.seed, count)

    def on_task_start(self, net: nn.Module, task_id: int) -> None:
        if self.reinit and task_id > 0:
            reinitialise(net, self.seed * 1_000 + task_id)

    def eval_logits(self, net: nn.Module, batch: Batch) -> Tensor:
        logits = net(batch.x, batch.t)
        if len(self.buffer) == 0:  # nothing stored yet (the random-init reference test)
            return logits
        seen = torch.zeros(logits.shape[1], dtype=torch.bool)
        seen[torch.unique(self.buffer.stored().y)] = True
        return logits.masked_fill(~seen.to(logits.device), float("-inf"))

    def state_dict(self) -> dict:
        return {"buffer": self.buffer.state_dict(), "tasks_absorbed": self.tasks_absorbed}

    def load_state_dict(self, state: dict) -> None:
        self.buffer.load_state_dict(state["buffer"])
        self.tasks_absorbed = int(state["tasks_absorbed"])


def reinitialise(net: nn.Module, seed: int) -> None:
    """Every submodule's `reset_parameters()` (Linear, Conv, BatchNorm, ...), drawn on the CPU from
    `seed` without touching the global RNG; the values are copied into the live parameters in place,
    so an optimizer holding them keeps working."""
    fresh = copy.deepcopy(net).cpu()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in fresh.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    with torch.no_grad():
        net.load_state_dict(fresh.state_dict())
