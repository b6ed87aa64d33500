"""The sweep: for each importance and setting, replace a fraction p of the weights and re-evaluate."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from retentive.evaluate import score
from retentive.surgery.replace import replaced, replacement_values
from retentive.surgery.selection import Ranking

COLUMNS = ("importance", "source", "remove", "scope", "replace", "p", "replaced", "total", "loss", "accuracy")


@dataclass(frozen=True)
class Setting:
    """remove: least | most important; scope: model | layer quantiles; replace: zero | noise."""

    remove: str
    scope: str
    replace: str


def evaluate(net: nn.Module, strategy: Any, datasets: Sequence[Any], batch_size: int) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) over the union of `datasets` (each weighted by its size)."""
    sizes = [len(d) for d in datasets]
    scores = [score(strategy, net, d, batch_size) for d in datasets]
    total = max(sum(sizes), 1)
    return (sum(n * acc for n, (acc, _) in zip(sizes, scores, strict=True)) / total,
            sum(n * loss for n, (_, loss) in zip(sizes, scores, strict=True)) / total)


def sweep(
    net: nn.Module,
    strategy: Any,
    datasets: Sequence[Any],
    params: dict[str, nn.Parameter],
    importances: dict[str, dict[str, Tensor]],
    sources: dict[str, str],
    fractions: Sequence[float],
    settings: Sequence[Setting],
    seed: int = 0,
    batch_size: int = 1024,
    report: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """One row per (setting, importance, p); p = 0 is the untouched net (evaluated once)."""
    total = sum(p.numel() for p in params.values())
    base_accuracy, base_loss = evaluate(net, strategy, datasets, batch_size)
    rankings: dict[tuple[str, str], Ranking] = {}
    values: dict[str, dict[str, Tensor]] = {}
    rows = []
    for setting in settings:
        if setting.replace not in values:
            values[setting.replace] = replacement_values(params, setting.replace, seed)
        for name, omega in importances.items():
            key = (name, setting.scope)
            if key not in rankings:
                rankings[key] = Ranking({n: omega[n] for n in params}, setting.scope, seed)
            for fraction in fractions:
                row = {"importance": name, "source": sources[name], "remove": setting.remove,
                       "scope": setting.scope, "replace": setting.replace, "p": float(fraction), "total": total}
                if fraction == 0:
                    row.update(replaced=0, loss=base_loss, accuracy=base_accuracy)
                else:
                    masks = rankings[key].masks(fraction, setting.remove)
                    with replaced(params, masks, values[setting.replace]) as count:
                        accuracy, loss = evaluate(net, strategy, datasets, batch_size)
                    row.update(replaced=count, loss=loss, accuracy=accuracy)
                rows.append({c: row[c] for c in COLUMNS})
                if report is not None:
                    report(rows[-1])
    return rows
