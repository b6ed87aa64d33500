"""Joint (cumulative) training: at task t, train on the union of tasks 0..t (the upper bound)."""

from __future__ import annotations

from retentive.data.stream import TaskStream
from retentive.data.task_dataset import TaskDataset
from retentive.strategies.base import Strategy


class Joint(Strategy):
    """Sees all earlier tasks' data again; its final accuracy is the offline upper bound."""

    def train_dataset(self, task_id: int, stream: TaskStream) -> TaskDataset:
        return TaskDataset.concat([stream.train(t) for t in range(task_id + 1)])
