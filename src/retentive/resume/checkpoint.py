"""RunCheckpoint: everything a run needs to continue, written at every epoch end and task end.

A checkpoint holds the network, the optimizer, the strategy's state (importances, anchors,
buffers, teachers), every stateful callback (results so far, the evaluation history), the RNG
states and the loop position, plus the resolved config. It is written atomically and loaded with
`torch.load(weights_only=True)`: tensors and plain values only, no pickled code.

Position: `task` is the task being trained; `task_done` whether its test and task-end work are
finished; `epoch` / `global_step` are the Trainer's counters at the save.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig, OmegaConf

from retentive.errors import ConfigError
from retentive.resume.rng import capture_rng, restore_rng
from retentive.storage.atomic import atomic_torch_save

if TYPE_CHECKING:
    from retentive.module import ContinualModule

FORMAT = 2
LAST = "last.pt"


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint written by RunCheckpoint, loaded weights-only; one line if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("ckpt_path", f"{path} does not exist", "point to a run's checkpoints/last.pt")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated or not a torch file
        raise ConfigError("ckpt_path", f"{path} is not a readable checkpoint ({str(error).splitlines()[0]})",
                          "use checkpoints/last.pt or after_task<k>.pt of a run") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ConfigError("ckpt_path", f"{path} was not written by this version of retentive",
                          "re-run, or evaluate the net weights in state['net'] by hand")
    return state


def set_loop_position(trainer: L.Trainer, epoch: int, global_step: int) -> None:
    """Put the Trainer's counters where an uninterrupted run would have them after `epoch` epochs."""
    progress = trainer.fit_loop.epoch_progress
    for counter in (progress.current, progress.total):
        counter.ready = counter.started = counter.processed = counter.completed = epoch
    steps = trainer.fit_loop.epoch_loop.automatic_optimization.optim_progress.optimizer.step
    for counter in (steps.current, steps.total):
        counter.ready = counter.completed = global_step
    trainer.fit_loop.epoch_loop._batches_that_stepped = global_step


class RunCheckpoint(Callback):
    """Writes `<dirpath>/last.pt` at every epoch end (`every_epoch`) and, via `save_task_end`, at
    every task end; with `keep_every_task` also `after_task<k>.pt`."""

    def __init__(self, dirpath: str | Path, cfg: DictConfig, every_epoch: bool = True,
                 keep_every_task: bool = False) -> None:
        self.dirpath = Path(dirpath)
        self.config_yaml = OmegaConf.to_yaml(cfg, resolve=True)
        self.every_epoch = every_epoch
        self.keep_every_task = keep_every_task
        self.seconds = 0.0  # time spent writing (the bench reports it against training time)
        self.rng_to_restore: dict[str, Any] | None = None

    @property
    def last(self) -> Path:
        return self.dirpath / LAST

    def state(self, trainer: L.Trainer, module: ContinualModule, task_done: bool, epoch: int) -> dict[str, Any]:
        optimizer = module.current_optimizer
        states = {type(cb).__name__: cb.state_dict() for cb in trainer.callbacks if not isinstance(cb, RunCheckpoint)}
        callbacks = {name: state for name, state in states.items() if state}
        return {
            "format": FORMAT,
            "config": self.config_yaml,
            "position": {"task": module.current_task, "task_done": task_done, "epoch": epoch,
                         "global_step": trainer.global_step},
            "net": module.net.state_dict(),
            "optimizer": None if optimizer is None else optimizer.state_dict(),
            "strategy": module.strategy.state_dict(),
            "module": {"task_loss_weight": module.task_loss_weight},
            "callbacks": callbacks,
            "rng": capture_rng(),
        }

    def save(self, trainer: L.Trainer, module: ContinualModule, task_done: bool, epoch: int) -> None:
        if not trainer.is_global_zero:
            return
        start = time.perf_counter()
        state = self.state(trainer, module, task_done, epoch)
        atomic_torch_save(self.last, state)
        if task_done and self.keep_every_task:
            atomic_torch_save(self.dirpath / f"after_task{module.current_task}.pt", state)
        self.seconds += time.perf_counter() - start

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # A run resumed mid-task continues at an epoch start, where the uninterrupted run had the
        # RNG state saved at the previous epoch end; starting a `fit` draws random numbers first,
        # so the saved state is restored here, after them.
        if self.rng_to_restore is not None:
            restore_rng(self.rng_to_restore)
            self.rng_to_restore = None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # validation has run and been recorded; the Trainer increments its epoch after this hook
        if self.every_epoch:
            self.save(trainer, pl_module, task_done=False, epoch=trainer.current_epoch + 1)

    def save_task_end(self, trainer: L.Trainer, module: ContinualModule) -> None:
        self.save(trainer, module, task_done=True, epoch=trainer.current_epoch)


def restore(state: dict[str, Any], trainer: L.Trainer, module: ContinualModule, reset_optimizer: bool) -> None:
    """Load a checkpoint's state into a freshly built run (RNG last, by the caller, just before
    training continues)."""
    module.net.load_state_dict(state["net"])
    module.strategy.load_state_dict(state["strategy"])
    module.task_loss_weight = state["module"]["task_loss_weight"]
    position = state["position"]
    module.current_task = position["task"]
    if state["optimizer"] is not None and not (position["task_done"] and reset_optimizer):
        module.optimizer_state_to_load = state["optimizer"]
    by_name = {type(cb).__name__: cb for cb in trainer.callbacks}
    for name, callback_state in state["callbacks"].items():
        if name in by_name:
            by_name[name].load_state_dict(callback_state)
    set_loop_position(trainer, position["epoch"], position["global_step"])
