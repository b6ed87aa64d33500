"""Explanation drift matrix `D[i][j]`: how alike task j's attribution maps are after task i and right
after task j was learned, with the summary scores built on it (the accuracy matrix's analogue)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from scipy.stats import rankdata
from torch import Tensor
from torchmetrics import Metric


def _flat_importance(maps: Tensor) -> Tensor:
    """`[N, P]` absolute attribution per pixel: drift asks whether the model relies on the same
    pixels, whichever direction their evidence points (saliency maps are absolute already)."""
    return maps.detach().cpu().to(torch.float64).reshape(len(maps), -1).abs()


def _is_constant(values: Tensor) -> Tensor:
    return values.amax(dim=1) == values.amin(dim=1)


def spearman_similarity(before: Tensor, after: Tensor) -> Tensor:
    """Per image, Spearman's rank correlation of |before| and |after| over the pixels (ties get
    their mean rank). A constant map (e.g. all zero) has no ranking: two constant maps count as
    identical (1), one constant and one not as unrelated (0), so no NaN ever reaches D."""
    a, b = _flat_importance(before), _flat_importance(after)
    ranks_a, ranks_b = (torch.from_numpy(rankdata(v.cpu().numpy(), method="average", axis=1)) for v in (a, b))
    ranks_a, ranks_b = ranks_a - ranks_a.mean(dim=1, keepdim=True), ranks_b - ranks_b.mean(dim=1, keepdim=True)
    norm = ranks_a.norm(dim=1) * ranks_b.norm(dim=1)
    rho = (ranks_a * ranks_b).sum(dim=1) / norm.clamp_min(1e-300)  # Pearson's r of the ranks
    const_a, const_b = _is_constant(a), _is_constant(b)
    rho = torch.where(const_a | const_b, (const_a & const_b).to(rho.dtype), rho)
    return rho.clamp(-1.0, 1.0)


def topk_overlap(before: Tensor, after: Tensor, fraction: float = 0.1) -> Tensor:
    """Per image, the share of the `fraction` most important pixels (by |attribution|, K =
    max(1, round(fraction * pixels))) that both maps have in common: |A ∩ B| / K. Ties are broken
    by pixel position (a stable sort), so two constant maps share all K and the result is
    deterministic."""
    a, b = _flat_importance(before), _flat_importance(after)
    k = max(1, round(fraction * a.shape[1]))

    def top(values: Tensor) -> Tensor:
        order = torch.sort(values, dim=1, descending=True, stable=True).indices[:, :k]
        return torch.zeros_like(values, dtype=torch.bool).scatter_(1, order, True)

    return (top(a) & top(b)).sum(dim=1).to(torch.float64) / k


SIMILARITIES: dict[str, Callable[..., Tensor]] = {"spearman": spearman_similarity, "topk": topk_overlap}


class ExplanationDriftMatrix(Metric):
    """Stateful, torchmetrics-style, for one attribution method: `update(row, maps)` fills row
    `row` of D for every similarity; `compute()` scores the rows filled so far.

    `maps[j]` are the maps of task j's fixed sample after training task `row` (j <= row);
    `maps[row]` becomes task `row`'s reference. `D[i][j]` = mean over the sample of
    similarity(reference_j, maps after task i); `D[j][j] = 1` by construction, NaN above the
    diagonal. The reference maps are state, so a resumed run continues with the same ones.

    `set_initial(maps)` (the randomly initialised net's maps of every task, optional) gives the
    chance level `b[j]` = similarity(reference_j, random-init maps of task j): what `D[i][j]` would be
    if the net had forgotten everything it learned about task j's explanations (FWT's b_j analogue).
    """

    full_state_update = False

    def __init__(self, num_tasks: int, similarities: Sequence[str] = ("spearman", "topk"), topk: float = 0.1) -> None:
        # filled on one process from the same net on every rank: nothing to sync
        super().__init__(sync_on_compute=False)
        unknown = [s for s in similarities if s not in SIMILARITIES]
        if unknown or not similarities:
            raise ValueError(f"unknown similarities {unknown}; choose from {', '.join(SIMILARITIES)}")
        self.num_tasks = num_tasks
        self.similarities = tuple(similarities)
        self.topk = topk
        shape = (len(self.similarities), num_tasks, num_tasks)
        self.add_state("matrix", default=torch.full(shape, float("nan"), dtype=torch.float64),
                       dist_reduce_fx=None, persistent=True)
        self.add_state("references", default=[], dist_reduce_fx=None, persistent=True)
        self.add_state("initial", default=[], dist_reduce_fx=None, persistent=True)
        self.add_state("random_init", default=torch.full(shape[:2], float("nan"), dtype=torch.float64),
                       dist_reduce_fx=None, persistent=True)

    def set_initial(self, maps: Sequence[Tensor]) -> None:
        """Every task's maps from the randomly initialised net (before task 0)."""
        self.initial = [m.detach().to(torch.float32).cpu().clone() for m in maps]

    def similarity(self, task: int, maps: Tensor) -> Tensor:
        """`[S]`: mean similarity of `maps` (task `task`'s sample now) to that task's reference."""
        reference = self.references[task]
        values = []
        for name in self.similarities:
            kwargs = {"fraction": self.topk} if name == "topk" else {}
            values.append(SIMILARITIES[name](reference, maps, **kwargs).mean())
        return torch.stack(values)

    def update(self, row: int, maps: Sequence[Tensor]) -> None:  # type: ignore[override]
        if len(maps) != row + 1:
            raise ValueError(f"row {row} needs maps of tasks 0..{row}, got {len(maps)}")
        if row > len(self.references):
            raise ValueError(f"row {row} given before the reference of task {len(self.references)}")
        references = list(self.references[:row]) + [maps[row].detach().to(torch.float32).cpu().clone()]
        self.references = references
        matrix = self.matrix.clone()
        matrix[:, row:] = float("nan")  # a row given again invalidates the rows after it
        matrix[:, row, row] = 1.0
        for j in range(row):
            matrix[:, row, j] = self.similarity(j, maps[j].cpu())
        self.matrix = matrix
        if len(self.initial) > row:
            random_init = self.random_init.clone()
            random_init[:, row] = self.similarity(row, self.initial[row])
            self.random_init = random_init

    @property
    def rows_filled(self) -> int:
        return int((~torch.isnan(self.matrix[0]).all(dim=1)).sum())

    def compute(self) -> dict[str, dict[str, float]]:  # type: ignore[override]
        """Per similarity, over the n rows filled so far (nothing before two tasks):
        drift = mean over i > j of `(1 - D[i][j])`: how far explanations of earlier tasks were from
        their originals, averaged over the whole sequence;
        explanation_forgetting = mean over j < n-1 of `(max_{j<=l<n-1} D[l][j] - D[n-1][j])`: the
        forgetting formula on D, i.e. the final loss of similarity (`D[j][j] = 1` is the maximum)."""
        n = self.rows_filled
        scores: dict[str, dict[str, float]] = {}
        for s, name in enumerate(self.similarities):
            d = self.matrix[s, :n, :n]
            if n < 2:
                scores[name] = {}
                continue
            below = torch.tril(torch.ones(n, n, dtype=torch.bool), diagonal=-1)
            best = torch.stack([d[j : n - 1, j].max() for j in range(n - 1)])
            scores[name] = {"drift": (1 - d[below]).mean().item(),
                            "explanation_forgetting": (best - d[n - 1, : n - 1]).mean().item()}
        return scores

    def as_lists(self) -> dict[str, list[list[float | None]]]:
        """Per similarity, the filled rows of D with None above the diagonal (JSON-able)."""
        n = self.rows_filled
        return {name: [[None if math.isnan(v) else v for v in row] for row in self.matrix[s, :n].tolist()]
                for s, name in enumerate(self.similarities)}

    def random_init_lists(self) -> dict[str, list[float | None]]:
        """Per similarity, `b[j]` for every task (None until task j is learned, or without `set_initial`)."""
        return {name: [None if math.isnan(v) else v for v in self.random_init[s].tolist()]
                for s, name in enumerate(self.similarities)}

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:  # noqa: ANN001
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._update_count = self.rows_filled  # a restored metric counts as updated (no compute warning)
        self._computed = None
