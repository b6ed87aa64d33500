"""Every strategy's state survives a resume: interrupted mid-epoch, resumed from its checkpoint, the
run ends with the uninterrupted run's accuracy matrix and evaluation history, bit for bit."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import lightning as L
import pytest

from retentive.config import compose_config
from retentive.resume.checkpoint import load_checkpoint
from retentive.resume.signals import RunInterrupted
from retentive.runner import ContinualRun

CONF = Path(__file__).resolve().parents[1] / "conf" / "strategy"
STRATEGIES = sorted(p.stem for p in CONF.glob("*.yaml"))
BASE = ["dataset=split_digits", "dataset.scenario=class", "loader.batch_size=16", "schedule.epochs_per_task=2",
        "logger=none", "callbacks=none"]
NEEDS_CNN = {"saliency_replay": "strategy.explanation_map=input_gradient",
             "saliency_derpp": "strategy.explanation_map=input_gradient", "attention_distillation": "model=cnn"}


class InterruptMidEpoch(L.Callback):
    """Raises what SIGTERM raises, in the middle of the second epoch of task 2."""

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if module.current_task == 2 and trainer.current_epoch == 5 and batch_idx == 6:
            raise RunInterrupted("SIGTERM")


def _history(out: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((out / "metrics.csv").read_text().splitlines()))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_strategy_state_survives_resume(strategy: str, tmp_path: Path) -> None:
    overrides = [*BASE, f"strategy={strategy}"]
    if strategy in NEEDS_CNN:
        overrides.append(NEEDS_CNN[strategy])
    expected = tmp_path / "uninterrupted"
    ContinualRun(compose_config(overrides, expected), expected).fit()
    out = tmp_path / "interrupted"
    run = ContinualRun(compose_config(overrides, out), out)
    run.trainer.callbacks.append(InterruptMidEpoch())
    with pytest.raises(RunInterrupted):
        run.fit()
    assert json.loads((out / "results.json").read_text())["status"] == "interrupted at task 2, epoch 1 (SIGTERM)"
    state = load_checkpoint(out / "checkpoints" / "last.pt")
    assert state["position"]["task"] == 2 and not state["position"]["task_done"]
    resumed = ContinualRun(compose_config(overrides, out), out, state).fit()
    reference = json.loads((expected / "results.json").read_text())
    assert resumed["accuracy_matrix"] == reference["accuracy_matrix"]
    assert _history(out) == _history(expected)
