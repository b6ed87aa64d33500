"""lint's phase schedule: which loss terms are on in which epoch, restarting with every task."""

from __future__ import annotations

from functools import partial

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from retentive.callbacks.phase_schedule import PhaseSchedule
from retentive.data import SplitDigits, collate_batch
from retentive.errors import ConfigError
from retentive.explanations import CAMLoss
from retentive.models import build_net, cnn_backbone
from retentive.module import ContinualModule
from retentive.resume.checkpoint import set_loop_position
from retentive.strategies.naive import Naive


class Recorder(L.Callback):
    """(explanation weight, task-loss weight) seen by the first training batch of every epoch."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, float]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == 0:
            self.seen.append((pl_module.explanation.weight, getattr(pl_module, "task_loss_weight", 1.0)))


def module(task_loss_weight: bool) -> ContinualModule:
    torch.manual_seed(0)
    stream = SplitDigits()
    net = build_net(partial(cnn_backbone, channels=[4], hidden=8), stream.input_shape, stream.head_sizes, False)
    mod = ContinualModule(net, Naive(), 1, partial(torch.optim.Adam, lr=1e-3), CAMLoss(weight=0.7))
    if not task_loss_weight:
        del mod.task_loss_weight  # a LightningModule that cannot switch its task loss off
    return mod


def loader() -> DataLoader:
    return DataLoader(SplitDigits().train(0).subset(torch.arange(32)), batch_size=16, collate_fn=collate_batch)


def test_phases_switch_the_loss_terms_per_epoch_and_restart_per_task() -> None:
    mod, schedule, recorder = module(True), PhaseSchedule(task_epochs=1, penalty_epochs=2, final_epochs=1), Recorder()
    trainer = L.Trainer(max_epochs=5, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[schedule, recorder])
    trainer.fit(mod, loader())
    assert recorder.seen == [(0.0, 1.0), (0.7, 0.0), (0.7, 0.0), (0.0, 1.0), (0.0, 1.0)]
    assert [phase for _, phase in schedule.history] == ["task", "penalty", "penalty", "final", "final"]
    assert mod.explanation.weight == 0.7 and mod.task_loss_weight == 1.0  # restored after fit
    # the next task (a new fit on the same trainer, as the runner does) starts from phase one again
    trainer.fit_loop.max_epochs = 8
    trainer.fit(mod, loader())
    assert recorder.seen[5:] == [(0.0, 1.0), (0.7, 0.0), (0.7, 0.0)]


class FirstGrads(L.Callback):
    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if not hasattr(self, "grads"):
            self.grads = [p.grad.detach().clone() for p in pl_module.net.parameters()]


def test_penalty_only_epochs_train_on_the_penalty_alone() -> None:
    mod, recorder = module(True), FirstGrads()
    L.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False, callbacks=[PhaseSchedule(0, 1, 0), recorder]).fit(mod, loader())
    reference = module(True)
    x, y, t = next(iter(loader()))
    expected = torch.autograd.grad(0.7 * reference.explanation(reference.net, x, y, None, t),
                                   list(reference.net.parameters()), allow_unused=True)
    for got, want in zip(recorder.grads, expected, strict=True):
        torch.testing.assert_close(got, torch.zeros_like(got) if want is None else want)


def test_penalty_phase_without_module_support_is_a_config_error() -> None:
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[PhaseSchedule()])
    with pytest.raises(ConfigError, match="task_loss_weight"):
        trainer.fit(module(False), loader())


def test_a_fit_resumed_inside_a_task_keeps_that_tasks_phases() -> None:
    """Epoch-end checkpoints are written inside a task's fit; the resumed fit starts mid-task."""
    mod, schedule = module(True), PhaseSchedule(task_epochs=1, penalty_epochs=2, final_epochs=1)
    mod.current_task = 1
    trainer = L.Trainer(max_epochs=6, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[schedule])
    set_loop_position(trainer, 4, 0)  # task 1 started at epoch 4
    trainer.fit(mod, loader())
    saved = {**schedule.state_dict(), "mid_task": True}  # as written at the end of epoch 4
    resumed = PhaseSchedule(task_epochs=1, penalty_epochs=2, final_epochs=1)
    resumed.load_state_dict(saved)
    trainer = L.Trainer(max_epochs=7, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[resumed])
    set_loop_position(trainer, 5, 0)
    trainer.fit(mod, loader())
    assert resumed.task_start_epoch == 4
    assert resumed.history == [(5, "penalty"), (6, "penalty")]  # epochs 1 and 2 of the task, not 0 and 1
