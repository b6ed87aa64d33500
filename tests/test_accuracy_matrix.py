"""ACC, BWT, FWT and forgetting against their textbook definitions on a known matrix."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from retentive.metrics.accuracy_matrix import AccuracyMatrix


def test_scores_match_definitions():
    rng = np.random.default_rng(0)
    r = rng.uniform(size=(4, 4))
    b = rng.uniform(size=4)
    metric = AccuracyMatrix(4)
    metric.update(-1, torch.tensor(b))
    for i in range(4):
        metric.update(i, torch.tensor(r[i]))
    scores = metric.compute()
    t = 4
    assert scores["ACC"] == pytest.approx(r[t - 1].mean(), abs=1e-6)
    assert scores["BWT"] == pytest.approx(np.mean([r[t - 1, j] - r[j, j] for j in range(t - 1)]), abs=1e-6)
    assert scores["FWT"] == pytest.approx(np.mean([r[j - 1, j] - b[j] for j in range(1, t)]), abs=1e-6)
    forgetting = np.mean([max(r[row, j] for row in range(t - 1)) - r[t - 1, j] for j in range(t - 1)])
    assert scores["forgetting"] == pytest.approx(forgetting, abs=1e-6)


def test_partial_sequence_scores_only_filled_rows():
    metric = AccuracyMatrix(3)
    metric.update(0, torch.tensor([0.9, 0.1, 0.2]))
    metric.update(1, torch.tensor([0.5, 0.8, 0.3]))
    scores = metric.compute()
    assert scores["ACC"] == pytest.approx((0.5 + 0.8) / 2)
    assert scores["BWT"] == pytest.approx(0.5 - 0.9)
    assert "FWT" not in scores  # no random-init reference recorded
    assert np.allclose(metric.as_lists()["accuracy_matrix"], [[0.9, 0.1, 0.2], [0.5, 0.8, 0.3]])
