"""TaskCheckpoint: the network (and the strategy's state) saved at task boundaries."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch

from retentive.callbacks.continual import ContinualCallback


class TaskCheckpoint(ContinualCallback):
    """Writes `checkpoints/after_task<i>.pt` (`every_task`) or only `checkpoints/last.pt`.

    Each file holds `net` (state dict), `strategy` (its `state_dict()`: importances, anchors) and
    `task`, so a model can be reloaded for analysis or a later task appended.
    """

    def __init__(self, dirpath: str, every_task: bool = False) -> None:
        self.dirpath = Path(dirpath)
        self.every_task = every_task

    def on_task_end(self, trainer: L.Trainer, module: L.LightningModule, task: int) -> None:
        if not trainer.is_global_zero:
            return
        self.dirpath.mkdir(parents=True, exist_ok=True)
        state = {"task": task, "net": module.net.state_dict(), "strategy": module.strategy.state_dict()}
        name = f"after_task{task}.pt" if self.every_task else "last.pt"
        torch.save(state, self.dirpath / name)
