"""check_config: the composed config against the schema (rules.py), first mistake as a ConfigError."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from omegaconf import DictConfig, OmegaConf

from retentive.errors import ConfigError
from retentive.schema.rules import RULES, Rule


def leaves(node: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted key, value) of every leaf of a resolved container; lists are leaves."""
    if isinstance(node, DictConfig):
        node = OmegaConf.to_container(node, resolve=True)
    if isinstance(node, dict):
        return [pair for key, value in node.items() for pair in leaves(value, f"{prefix}{key}.")]
    return [(prefix.rstrip("."), node)]


def rule_for(key: str) -> Rule | None:
    return next((rule for rule in RULES if fnmatchcase(key, rule.pattern)), None)


def _number(value: Any, integer: bool) -> float | None:
    if isinstance(value, bool):
        return None
    if integer:
        return value if isinstance(value, int) else None
    return float(value) if isinstance(value, int | float) else None


def _in_bounds(rule: Rule, number: float) -> bool:
    if rule.low is not None and (number <= rule.low if rule.low_open else number < rule.low):
        return False
    return not (rule.high is not None and (number >= rule.high if rule.high_open else number > rule.high))


def violates(rule: Rule, value: Any) -> bool:
    """Whether `value` breaks `rule`."""
    if value is None:
        return not rule.nullable
    if rule.kind == "list":
        return not isinstance(value, list)
    if rule.kind == "bool":
        return not isinstance(value, bool)
    if rule.kind == "str":
        return not isinstance(value, str)
    if rule.kind == "choice":
        return str(value) not in map(str, rule.choices)
    if rule.kind == "int_or_auto":
        if value == "auto" or isinstance(value, list):
            return False
        number = _number(value, True)
        return number is None or not _in_bounds(rule, number)
    if rule.kind == "interval":
        number = _number(value, False)
        if number is None:
            return True
        return not (0 < number <= 1) if isinstance(value, float) else number < 1
    number = _number(value, rule.kind == "int")
    return number is None or not _in_bounds(rule, number)


def check_heads(scenario: str | None, heads: str | None) -> None:
    """Multi-head nets need task ids at test time, which only Task-IL gives."""
    if heads == "multi" and scenario is not None and scenario != "task":
        raise ConfigError("model.heads", f"'multi' needs task ids at test time, which {scenario}-IL does not give",
                          "use model.heads=auto|single, or dataset.scenario=task")


def check_combinations(values: dict[str, Any]) -> None:
    """Values that are each allowed but impossible together (caught here, before any data is loaded)."""
    scenario = values.get("dataset.scenario")
    check_heads(scenario, values.get("model.heads"))
    steps, epochs = values.get("schedule.steps_per_task"), values.get("schedule.epochs_per_task")
    if isinstance(steps, int) and isinstance(epochs, int) and epochs > steps:
        raise ConfigError("schedule.epochs_per_task", f"{epochs} evaluation points for only {steps} steps per task",
                          "with schedule.steps_per_task set, epochs_per_task counts evaluations: use <= steps")
    if values.get("strategy.buffer_mode") == "class_balanced" and scenario in ("domain", "task"):
        raise ConfigError("strategy.buffer_mode", f"class_balanced in {scenario.capitalize()}-IL keeps the first "
                          "task's samples for ever (every task has the same labels 0..k, so no class is ever short)",
                          "use strategy.buffer_mode=task_balanced (an equal share per task) or reservoir")


def check_config(cfg: DictConfig) -> None:
    """Raise a ConfigError for the first value that breaks its rule (key, bad value, what is allowed)."""
    pairs = leaves(cfg)
    for key, value in pairs:
        if key.startswith("hydra.") or key == "hydra":
            continue
        rule = rule_for(key)
        if rule is not None and violates(rule, value):
            shown = value if not isinstance(value, str) else f"'{value}'"
            raise ConfigError(key, f"{shown} must be {rule.allowed()}")
    check_combinations(dict(pairs))
