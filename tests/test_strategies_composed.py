"""Methods compose through config alone: rehearsal + saliency replay, explanation penalty + rehearsal."""

from __future__ import annotations

import json

import pytest

from tests.conftest import needs_mnist


def test_derpp_with_saliency_replay_stores_logits_and_maps_and_runs(run_config) -> None:
    summary, out = run_config("dataset=split_digits", "strategy=saliency_derpp", "strategy.explanation_map=input_gradient",
                              "strategy.buffer_size=100", "schedule.epochs_per_task=3", "loader.batch_size=32")
    results = json.loads((out / "results.json").read_text())
    assert results["status"] == "complete" and results["strategy"] == "SaliencyDERpp"
    naive, _ = run_config("dataset=split_digits", "strategy=naive", "schedule.epochs_per_task=3", "loader.batch_size=32")
    assert summary["ACC"] > naive["ACC"] + 0.2  # the rehearsal still works with the extra term
    # 100 samples x (64 pixels x float32 maps + 10 logits + x) are part of the strategy's memory
    assert results["strategy_memory_bytes"] > 100 * (64 + 10 + 64) * 4


@needs_mnist
def test_cdep_with_derpp_runs_as_one_config(run_config) -> None:
    summary, out = run_config("dataset=decoy_mnist", "dataset.class_groups=[[0,1,2,3,4],[5,6,7,8,9]]",
                              "dataset.train_samples_per_task=1000", "dataset.test_samples_per_task=300",
                              "model=cnn", "explanation=cdep", "strategy=derpp", "strategy.buffer_size=100")
    results = json.loads((out / "results.json").read_text())
    assert results["status"] == "complete"
    assert results["strategy"] == "DERpp" and results["explanation"] == "CDEP"
    assert len(results["accuracy_matrix"]) == 2 and summary["ACC"] == pytest.approx(
        sum(results["accuracy_matrix"][-1]) / 2)
