"""Explanation drift: similarities against their textbook definitions, D, its scores and its
random-init level against their formulas, and on real runs: 1 on the diagonal and lower off it
under naive fine-tuning, exactly 1 when nothing is learned, unchanged training, loggers fed, and
the same D after a resume."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from retentive.callbacks.explanation_drift import ExplanationDrift
from retentive.config import compose_config
from retentive.errors import ConfigError
from retentive.metrics import ExplanationDriftMatrix, spearman_similarity, topk_overlap
from retentive.resume.checkpoint import load_checkpoint
from retentive.runner import ContinualRun, run

DIGITS = ["dataset=split_digits", "dataset.scenario=class", "dataset.class_groups=[[0,1],[2,3],[4,5]]",
          "loader.batch_size=32", "callbacks=none", "drift=default", "drift.explanation.samples_per_task=40",
          "drift.explanation.history=true"]


def _maps(seed: int, n: int = 5, side: int = 6) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    maps = torch.randn(n, 1, side, side, generator=generator)
    return torch.where(maps.abs() < 0.5, torch.zeros_like(maps), maps)  # ties at 0, like IG off the ink


def test_spearman_is_scipys_rank_correlation_of_absolute_maps_and_constant_maps_give_no_nan():
    a, b = _maps(0), _maps(1)
    expected = [spearmanr(a[i].abs().flatten(), b[i].abs().flatten()).statistic for i in range(len(a))]
    assert np.allclose(spearman_similarity(a, b).numpy(), expected, atol=1e-12)
    assert torch.allclose(spearman_similarity(a, -a), torch.ones(len(a), dtype=torch.float64))  # sign ignored
    zero, flat = torch.zeros(2, 1, 4, 4), torch.full((2, 1, 4, 4), 3.0)
    assert spearman_similarity(zero, flat).tolist() == [1.0, 1.0]  # both constant: unchanged
    assert spearman_similarity(zero, a[:2, :, :4, :4]).tolist() == [0.0, 0.0]  # one constant: unrelated


def test_topk_overlap_counts_shared_top_pixels():
    before = torch.arange(10.0).reshape(1, 1, 2, 5)  # top 20% (2 of 10 pixels): 9 and 8
    after = torch.tensor([[[[0.0, 0, 0, 0, 0], [0, 0, 0, -7, 9]]]])  # top 2: 9 and |-7| at 8's place
    assert topk_overlap(before, after, 0.2).item() == 1.0
    after[0, 0, 1, 3] = 0.0  # now only 9 is shared; ties at 0 broken by position (pixel 0 is second)
    assert topk_overlap(before, after, 0.2).item() == 0.5
    assert topk_overlap(before, after, 0.5).item() == pytest.approx(1 / 5)  # 5 of 10: {5..9} vs {9, 0, 1, 2, 3}
    assert topk_overlap(torch.zeros(1, 1, 3, 3), torch.zeros(1, 1, 3, 3), 0.3).item() == 1.0


def test_matrix_rows_and_scores_follow_their_definitions_and_survive_a_weights_only_round_trip():
    maps = [[_maps(10 * row + j) for j in range(row + 1)] for row in range(4)]
    initial = [_maps(100 + j) for j in range(4)]
    metric = ExplanationDriftMatrix(4, ("spearman", "topk"), topk=0.25)
    metric.set_initial(initial)
    for row in range(2):
        metric.update(row, maps[row])
    buffer = io.BytesIO()
    torch.save(dict(metric.state_dict()), buffer)
    buffer.seek(0)
    resumed = ExplanationDriftMatrix(4, ("spearman", "topk"), topk=0.25)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    for row in range(2, 4):
        metric.update(row, maps[row])
        resumed.update(row, maps[row])
    d = np.full((2, 4, 4), np.nan)
    for i in range(4):
        d[:, i, i] = 1.0
        for j in range(i):  # reference: task j's maps in row j
            d[0, i, j] = spearman_similarity(maps[j][j], maps[i][j]).mean().item()
            d[1, i, j] = topk_overlap(maps[j][j], maps[i][j], 0.25).mean().item()
    for s, name in enumerate(("spearman", "topk")):
        got = np.array([[np.nan if v is None else v for v in row] for row in metric.as_lists()[name]])
        assert np.allclose(got, d[s], equal_nan=True, atol=1e-12)
        assert metric.as_lists()[name] == resumed.as_lists()[name]
        similarity = spearman_similarity if name == "spearman" else lambda a, b: topk_overlap(a, b, 0.25)
        chance = [similarity(maps[j][j], initial[j]).mean().item() for j in range(4)]
        assert resumed.random_init_lists()[name] == pytest.approx(chance, abs=1e-12)  # b[j] vs the random init
        below = d[s][np.tril_indices(4, -1)]
        forgetting = np.mean([max(d[s, k, j] for k in range(j, 3)) - d[s, 3, j] for j in range(3)])
        assert metric.compute()[name]["drift"] == pytest.approx(np.mean(1 - below), abs=1e-12)
        assert metric.compute()[name]["explanation_forgetting"] == pytest.approx(forgetting, abs=1e-12)
    assert resumed.compute() == metric.compute()


@pytest.fixture(scope="module")
def naive(tmp_path_factory):
    out = tmp_path_factory.mktemp("naive")
    run(compose_config([*DIGITS, "logger=default", "checkpoint.keep_every_task=true"], out), out)
    return out, json.loads((out / "results.json").read_text())


def test_naive_fine_tuning_drifts_off_the_diagonal_with_one_on_it(naive):
    out, results = naive
    section = results["explanation_drift"]
    for method in ("saliency", "integrated_gradients"):
        for similarity in ("spearman", "topk"):
            d = section["matrices"][method][similarity]
            assert len(d) == 3 and all(d[i][i] == 1.0 for i in range(3))
            assert all(d[i][j] is None for i in range(3) for j in range(i + 1, 3))
            below = [d[i][j] for i in range(3) for j in range(i)]
            assert all(-1.0 <= v < 0.99 for v in below), (method, similarity, below)
            assert (out / "drift" / f"drift_{method}_{similarity}.png").stat().st_size > 10_000
            chance = section["random_init_similarity"][method][similarity]
            assert len(chance) == 3 and all(-1.0 <= b < 0.99 for b in chance)
    scores = section["scores"]["saliency"]["spearman"]
    assert results["drift"] == scores["drift"] > 0.05 and results["explanation_forgetting"] == \
        scores["explanation_forgetting"] > 0.05
    # the similarity recorded at the last validation of a task is the task-end row (same net)
    last = {(h["trained_task"], h["method"], h["similarity"], h["eval_task"]): h["value"] for h in section["history"]}
    assert {key[0] for key in last} == {1, 2}
    for (row, method, similarity, j), value in last.items():
        assert value == pytest.approx(section["matrices"][method][similarity][row][j], abs=1e-12)
    header = (out / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"cl/drift", "cl/explanation_forgetting", "drift/saliency/spearman/task0",
            "drift_curve/integrated_gradients/topk/task1"} <= set(header)


def test_drift_changes_no_training_and_is_exactly_one_when_nothing_is_learned(naive, run_config):
    _, results = naive
    off, _ = run_config(*DIGITS[:-3])  # no drift
    assert off["accuracy_matrix"] == results["accuracy_matrix"]
    frozen, _ = run_config(*DIGITS, "model.optimizer.lr=1e-30", "drift.explanation.history=false")
    for matrices in frozen["explanation_drift"]["matrices"].values():
        for d in matrices.values():
            assert [d[i][j] for i in range(3) for j in range(i)] == pytest.approx([1.0] * 3, abs=1e-12)
    assert frozen["drift"] == pytest.approx(0.0, abs=1e-12)
    assert frozen["explanation_forgetting"] == pytest.approx(0.0, abs=1e-12)
    assert frozen["explanation_drift"]["history"] == []
    for chance in frozen["explanation_drift"]["random_init_similarity"].values():  # the net is its random init
        for values in chance.values():
            assert values == pytest.approx([1.0] * 3, abs=1e-12)


def test_a_run_resumed_after_task_1_gives_the_same_drift(naive, tmp_path):
    out, results = naive
    state = load_checkpoint(out / "checkpoints" / "after_task1.pt")
    assert "ExplanationDrift" in state["callbacks"]
    resumed = ContinualRun(compose_config([*DIGITS, "logger=none"], tmp_path), tmp_path, state).fit()
    assert resumed["accuracy_matrix"] == results["accuracy_matrix"]
    assert resumed["explanation_drift"]["matrices"] == results["explanation_drift"]["matrices"]
    assert resumed["explanation_drift"]["history"] == results["explanation_drift"]["history"]
    assert resumed["explanation_drift"]["random_init_similarity"] == results["explanation_drift"]["random_init_similarity"]
    assert resumed["drift"] == results["drift"]


@pytest.mark.parametrize("override, message", [
    ("drift.explanation.methods=[saliency,lime]", "drift.explanation.methods: unknown method 'lime'"),
    ("drift.explanation.methods=[gradcam]", "probes: .*needs a model with conv"),
    ("drift.explanation.similarities=[pearson]", "drift.explanation.similarities: .* non-empty list of"),
    ("drift.explanation.topk=1.5", "drift.explanation.topk: 1.5 must be a fraction"),
    ("drift.explanation.samples_per_task=0", "drift.explanation.samples_per_task: 0 must be"),
])
def test_bad_drift_options_fail_in_one_line_before_training(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        ContinualRun(compose_config([*DIGITS, "logger=none", override], tmp_path), tmp_path)
    assert not (tmp_path / "checkpoints").exists()


def test_needs_come_from_the_chosen_probes():
    assert ExplanationDrift(["saliency"]).needs == ()
    assert ExplanationDrift(["saliency", "gradcam"]).needs == ("conv",)
