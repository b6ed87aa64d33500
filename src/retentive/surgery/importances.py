"""Which importances a surgery can use, and the rule that decides before any work.

The rule: an importance the run's strategy kept in its checkpoint is used as stored (the
consolidated Ω, i.e. what the penalty uses: the sum over the tasks finished so far). An importance
that depends only on the final net and the data (`fisher`, `mas`, `weight_magnitude`, `random`) is
computed from the checkpoint when the run did not store it. The others (`si`, `sign_flips`,
`momentum_reversals`, `weight_change`) need the training trajectory, so only a run that trained with
them has them. Anything else stops with one line naming the run dir, its strategy and what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.utils import get_class
from omegaconf import OmegaConf
from torch import Tensor, nn

from retentive.errors import ConfigError
from retentive.strategies.ewc import EWC
from retentive.strategies.importance import ImportanceStrategy
from retentive.strategies.mas import MAS
from retentive.strategies.seed_omegas import (
    MomentumReversals,
    RandomImportance,
    SignFlips,
    WeightChange,
    WeightMagnitude,
)
from retentive.strategies.si import SI

#: the importance each strategy keeps, by class (subclasses, e.g. OnlineEWC, inherit it)
STORED_BY: dict[type, str] = {
    EWC: "fisher", SI: "si", MAS: "mas", SignFlips: "sign_flips", MomentumReversals: "momentum_reversals",
    WeightChange: "weight_change", WeightMagnitude: "weight_magnitude", RandomImportance: "random",
}
#: importances that need only the final net (and data): computable from any checkpoint
COMPUTABLE = ("fisher", "mas", "weight_magnitude", "random")
NAMES = ("fisher", "si", "mas", "sign_flips", "momentum_reversals", "weight_change", "weight_magnitude", "random")
STRATEGY_OF = {"fisher": "ewc", "si": "si", "mas": "mas", "sign_flips": "sign_flips",
               "momentum_reversals": "momentum_reversals", "weight_change": "weight_change",
               "weight_magnitude": "weight_magnitude", "random": "random_importance"}


@dataclass(frozen=True)
class Source:
    """Where one importance comes from: `stored` in the checkpoint or `computed` from it."""

    name: str
    how: str


def stored_name(config: str | dict[str, Any]) -> tuple[str, str | None]:
    """(strategy class name, the importance it stores or None) from a checkpoint's config (YAML)."""
    target = str(OmegaConf.create(config).get("strategy", {}).get("_target_", ""))
    try:
        cls = get_class(target)
    except Exception:  # a strategy this version no longer has: it stores nothing we can read
        return target.rsplit(".", 1)[-1] or "unknown", None
    for base in cls.__mro__:
        if base in STORED_BY:
            return cls.__name__, STORED_BY[base]
    return cls.__name__, None


def stored_importance(state: dict[str, Any]) -> dict[str, Tensor]:
    """The consolidated Ω in a checkpoint's strategy state ({} when none was consolidated yet)."""
    consolidated = state.get("strategy", {}).get("consolidated") or {}
    return dict(consolidated.get("importance") or {})


def plan(state: dict[str, Any], requested: Sequence[str] | None, run_dir: str | Path) -> list[Source]:
    """The importances to sweep and where each comes from, or one line why not (no work done).

    `requested` None: the run's stored importance plus `random` (the control).
    """
    strategy, name = stored_name(state["config"])
    has_stored = name is not None and bool(stored_importance(state))
    where = f"{run_dir} (strategy {strategy})"
    if requested is None:
        if not has_stored:
            raise ConfigError("importance", f"{where} {_why_none(strategy, name)}",
                              f"ask for one computed from its checkpoint: --importance {' '.join(COMPUTABLE)}")
        return [Source(name, "stored")] + ([Source("random", "computed")] if name != "random" else [])
    sources = []
    for wanted in dict.fromkeys(requested):  # keep order, drop repeats
        if wanted not in NAMES:
            raise ConfigError("importance", f"unknown importance '{wanted}'", f"choose from {', '.join(NAMES)}")
        if wanted == name and has_stored:
            sources.append(Source(wanted, "stored"))
        elif wanted in COMPUTABLE:
            sources.append(Source(wanted, "computed"))
        else:
            raise ConfigError(
                "importance", f"{where} has no '{wanted}' importance ({_why_none(strategy, name, wanted)}) and it "
                "cannot be computed from a checkpoint (it is measured along the training trajectory)",
                f"train with strategy={STRATEGY_OF[wanted]} schedule.consolidate_last_task=true, or use one of "
                f"{', '.join(COMPUTABLE)}")
    return sources


def _why_none(strategy: str, name: str | None, wanted: str | None = None) -> str:
    if name is None:
        return "keeps no importance"
    if wanted is not None and wanted != name:
        return f"it keeps '{name}'"
    return (f"holds no '{name}' importance yet: it is consolidated at a task end, and the last task's is "
            "skipped unless schedule.consolidate_last_task=true")


def compute(name: str, net: nn.Module, params: dict[str, nn.Parameter], batches_per_task: Sequence[Any],
            examples: int | None, seed: int) -> dict[str, Tensor]:
    """Ω of a computable importance: each task's Ω (the strategies' own code) summed over the tasks
    given, as a per-task consolidation would. `examples` caps the examples per task (fisher, mas)."""
    measure = _measure(name, examples, seed)
    total = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in params.items()}
    for task, batches in enumerate(batches_per_task):
        for n, omega in measure.compute_importance(net, task, batches, params).items():
            total[n] += omega.detach().float()
    return total


def _measure(name: str, examples: int | None, seed: int) -> ImportanceStrategy:
    if name == "fisher":
        return EWC(fisher="exact", num_examples=examples, seed=seed)
    if name == "mas":
        return MAS(num_examples=examples)
    if name == "weight_magnitude":
        return WeightMagnitude()
    if name == "random":
        return RandomImportance(seed=seed)
    raise ValueError(f"{name} is not computable from a checkpoint")


def check_covers(name: str, omega: dict[str, Tensor], params: dict[str, nn.Parameter], strategy: str) -> None:
    """A stored Ω must cover every parameter in the surgery's scope, with finite values."""
    missing = [n for n in params if n not in omega]
    if missing:
        raise ConfigError("params", f"the stored '{name}' of {strategy} does not cover {missing[0]} "
                          f"({len(missing)} parameters missing; heads are protected only with "
                          "strategy.include_heads=true)", "use --params backbone")
    for n in params:
        if omega[n].shape != params[n].shape or not torch.isfinite(omega[n]).all():
            raise ConfigError("importance", f"the '{name}' importance of {n} is not finite or has the wrong shape",
                              "re-run the strategy's task-end computation")
