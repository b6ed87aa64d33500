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


def check_config(cfg: DictConfig) -> None:
    """Raise a ConfigError for the first value that breaks its rule (key, bad value, what is allowed)."""
    for key, value in leaves(cfg):
        if key.startswith("hydra.") or key == "hydra":
            continue
        rule = rule_for(key)
        if rule is not None and violates(rule, value):
            shown = value if not isinstance(value, str) else f"'{value}'"
            raise ConfigError(key, f"{shown} must be {rule.allowed()}")
