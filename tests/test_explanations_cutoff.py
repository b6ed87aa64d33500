"""ExplanationCutoff: the penalty for the first `steps` steps of every task, then off (an ablation)."""

from __future__ import annotations

import lightning as L
import pytest

from retentive.callbacks.explanation_cutoff import ExplanationCutoff
from retentive.errors import ConfigError
from tests.test_explanations_phase_schedule import loader, module


class StepRecorder(L.Callback):
    """The explanation weight every training step ran with (recorded after the cutoff set it)."""

    def __init__(self) -> None:
        self.seen: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.seen.append(pl_module.explanation.weight)


def test_penalty_runs_the_first_steps_of_every_task_then_stops() -> None:
    mod, cutoff, recorder = module(True), ExplanationCutoff(steps=3), StepRecorder()
    trainer = L.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[cutoff, recorder])
    cutoff.on_task_start(trainer, mod, 0)  # the runner calls it before each task's fit
    trainer.fit(mod, loader())  # 32 digits, batch 16: 2 steps an epoch
    assert recorder.seen == [0.7, 0.7, 0.7, 0.0]
    assert "train/explanation_loss" not in mod.step_terms  # off: the loss is not even computed
    assert mod.explanation.weight == 0.7  # restored after the fit
    # the next task counts its own steps from its start; the state survives a checkpoint
    restored = ExplanationCutoff(steps=3)
    restored.load_state_dict(cutoff.state_dict())
    trainer.callbacks[0] = restored
    restored.on_task_start(trainer, mod, 1)
    trainer.fit_loop.max_epochs = 5
    trainer.fit(mod, loader())
    assert recorder.seen[4:] == [0.7, 0.7, 0.7, 0.0, 0.0, 0.0]


def test_cutoff_needs_an_explanation_and_a_step_count() -> None:
    with pytest.raises(ConfigError, match=r"callbacks.explanation_cutoff.steps: -1 must be an integer >= 0"):
        ExplanationCutoff(steps=-1)
    mod = module(True)
    mod.explanation = None
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[ExplanationCutoff(steps=3)])
    with pytest.raises(ConfigError, match="callbacks.explanation_cutoff: needs an explanation penalty"):
        trainer.fit(mod, loader())
