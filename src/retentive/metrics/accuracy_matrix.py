"""Accuracy matrix `R[i][j]` (accuracy on task j after training task i) and the scores built on it."""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torchmetrics import Metric


class AccuracyMatrix(Metric):
    """Stateful, torchmetrics-style: `update(row, accuracies)` fills a row, `compute()` scores it.

    `row = -1` records the random-init reference b_j used by forward transfer (FWT).
    Definitions: ACC and BWT/FWT as in Lopez-Paz & Ranzato (2017, GEM); forgetting as in
    Chaudhry et al. (2018, RWalk): mean over old tasks of (best earlier accuracy - final accuracy).
    """

    full_state_update = False

    def __init__(self, num_tasks: int) -> None:
        # rows come from already-synced per-task accuracies, so every rank holds the same matrix
        super().__init__(sync_on_compute=False)
        self.num_tasks = num_tasks
        self.add_state("matrix", default=torch.full((num_tasks, num_tasks), float("nan")), dist_reduce_fx=None)
        self.add_state("reference", default=torch.full((num_tasks,), float("nan")), dist_reduce_fx=None)

    def update(self, row: int, accuracies: Tensor) -> None:  # type: ignore[override]
        values = torch.as_tensor(accuracies, dtype=torch.float32, device=self.matrix.device)
        if row < 0:
            self.reference = values.clone()
        else:
            matrix = self.matrix.clone()
            matrix[row] = values
            self.matrix = matrix

    @property
    def rows_filled(self) -> int:
        return int((~torch.isnan(self.matrix).all(dim=1)).sum())

    def compute(self) -> dict[str, float]:  # type: ignore[override]
        """Scores over the rows filled so far (a sequence cut short still gets its numbers)."""
        n = self.rows_filled
        if n == 0:
            return {}
        r = self.matrix[:n, :].double()
        last = r[n - 1]
        scores = {"ACC": last[:n].mean().item()}
        if n > 1:
            diag = torch.diagonal(r)[: n - 1]
            scores["BWT"] = (last[: n - 1] - diag).mean().item()
            best = r[: n - 1, : n - 1].max(dim=0).values
            scores["forgetting"] = (best - last[: n - 1]).mean().item()
            if not torch.isnan(self.reference).any():
                above = torch.tensor([r[j - 1, j].item() for j in range(1, n)], dtype=torch.float64)
                scores["FWT"] = (above - self.reference[1:n].double().cpu()).mean().item()
        return {k: v for k, v in scores.items() if not math.isnan(v)}

    def as_lists(self) -> dict[str, list]:
        return {
            "accuracy_matrix": [[_clean(v) for v in row] for row in self.matrix.tolist()][: self.rows_filled],
            "random_init_accuracy": [_clean(v) for v in self.reference.tolist()],
        }


def _clean(value: float) -> float | None:
    return None if math.isnan(value) else value
