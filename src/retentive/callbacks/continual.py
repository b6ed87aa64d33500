"""ContinualCallback: Lightning callback with hooks at task and sequence boundaries."""

from __future__ import annotations

import lightning as L


class ContinualCallback(L.Callback):
    """The runner calls these hooks on every callback that subclasses this one."""

    def on_task_start(self, trainer: L.Trainer, module: L.LightningModule, task: int) -> None:
        """Before the first epoch of `task`."""

    def on_task_end(self, trainer: L.Trainer, module: L.LightningModule, task: int) -> None:
        """After `task` was trained and all tasks were tested."""

    def on_sequence_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        """After the last task (also after a failure, so results made so far are kept)."""
