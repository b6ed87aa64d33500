"""Numerical sanity on real split_digits runs: an exploding (finite) loss and a penalty that dwarfs the
task loss give one warning per kind and task, in the log and in results.json `warnings`; a normal run
gives none; the warnings survive in the checkpoint for resume (docs/reliability.md, numerics rows)."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from retentive.config import compose_config
from retentive.errors import ConfigError
from retentive.runner import run
from tests.conftest import needs_mnist
from tests.test_cli import train

FAST = ["dataset=split_digits", "logger=none", "callbacks.progress=null", "callbacks.plots=null"]


def run_with_sanity(tmp_path, *overrides: str) -> dict:
    cfg = compose_config([*FAST, *overrides], tmp_path)
    return run(cfg, tmp_path)


def test_exploding_loss_without_nan_warns_in_log_and_results(tmp_path):
    done = train(*FAST, "model.optimizer._target_=torch.optim.SGD", "model.optimizer.lr=300", tmp_path=tmp_path,
                 env={"OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    run_dir = next(tmp_path.glob("*/*/results.json")).parent
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "complete"  # finite all along: the existing NaN stop does not fire
    warnings = results["warnings"]
    assert warnings and {w["kind"] for w in warnings} == {"loss_growth"}
    assert len({w["task"] for w in warnings}) == len(warnings)  # once per kind per task
    first = warnings[0]
    assert first["knob"] == "model.optimizer.lr" and first["penalty"] == 0.0
    assert first["loss"] > 1000 * 2.0  # > growth_factor x a first loss of ~ln(10)
    assert "lower model.optimizer.lr" in first["message"] and f"task {first['task']}" in first["message"]
    for log_text in (done.stdout, (run_dir / "train.log").read_text()):  # console and the run's log file
        logged = [line for line in log_text.splitlines() if "numerical sanity:" in line]
        assert len(logged) == len(warnings) and first["message"] in logged[0]
    # the warnings are in the whole-run checkpoint, so a resumed run keeps them (weights-only loadable)
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert state["callbacks"]["NumericalSanity"]["warnings"] == warnings


def test_absurd_ewc_lambda_warns_that_the_penalty_dwarfs_the_task_loss(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="retentive"):
        summary = run_with_sanity(tmp_path, "strategy=ewc", "strategy.lambda_=1e12")
    penalty = [w for w in summary["warnings"] if w["kind"] == "penalty"]
    assert penalty and penalty[0]["task"] >= 1  # no penalty before a task was consolidated
    for warning in penalty:
        assert warning["knob"] == "strategy.lambda_"
        assert warning["penalty"] > 1000 * max(warning["task_loss"], 0.01)
    assert all(w["knob"] != "model.optimizer.lr" for w in summary["warnings"])  # lr is not the culprit
    assert sum("lower strategy.lambda_" in r.getMessage() for r in caplog.records) == len(summary["warnings"])


def test_normal_run_has_no_warnings(tmp_path):
    summary = run_with_sanity(tmp_path, "strategy=ewc")
    assert summary["status"] == "complete" and summary["warnings"] == []
    assert summary["ACC"] > 0.2  # it did learn something


def test_bad_sanity_setting_is_one_line_before_training(tmp_path):
    with pytest.raises(ConfigError, match=r"callbacks.sanity.growth_factor: 0.5 must be > 1"):
        run_with_sanity(tmp_path, "callbacks.sanity.growth_factor=0.5")
    with pytest.raises(ConfigError, match=r"callbacks.sanity.vanish_ratio: 1 must be in \[0, 1\)"):
        run_with_sanity(tmp_path, "callbacks.sanity.vanish_ratio=1")
    assert not (tmp_path / "results.json").exists()


@needs_mnist
def test_cdep_penalty_that_vanishes_in_a_few_steps_is_reported(tmp_path):
    """The CDEP authors' ColorMNIST protocol on 2,560 train digits (10 steps): their penalty falls from ~4
    to below 1e-6 of that within the 10 steps (a logit shift satisfies it, docs/reproductions.md), which the
    sanity callback reports once, naming the explanation."""
    protocol = ["experiment=cdep2020_color_cdep", "dataset.train_samples_per_task=2560", "logger=none",
                "callbacks=default", "~callbacks.early_stopping", "callbacks.progress=null", "callbacks.plots=null",
                "evaluation.max_samples_per_task=500"]
    summary = run(compose_config(protocol, tmp_path), tmp_path)
    vanished = [w for w in summary["warnings"] if w["kind"] == "explanation_vanished"]
    assert len(vanished) == 1 and vanished[0]["knob"] == "explanation.weight"
    assert 3 <= vanished[0]["step"] <= 9  # within the first ten steps, not at the first
    assert vanished[0]["penalty"] < 5000 * 4e-6  # weighted: below 1e-6 of a first value of about 4
    assert "no longer shapes training" in vanished[0]["message"]
