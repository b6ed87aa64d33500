"""User-facing errors: one line that names the key and the fix, raised before any training."""

from __future__ import annotations


class ConfigError(ValueError):
    """A user mistake in the config or the environment (not a bug in retentive)."""

    def __init__(self, key: str, problem: str, fix: str = "") -> None:
        self.key = key
        message = f"{key}: {problem}"
        if fix:
            message += f" ({fix})"
        super().__init__(message)


def weight_value(key: str, value: object, fix: str = "") -> float:
    """`value` as a float if it is a number >= 0 (a loss weight), else a ConfigError (true/false refused)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ConfigError(key, f"must be a number >= 0, got {value!r}", fix)
    return float(value)


def require(condition: bool, key: str, problem: str, fix: str = "") -> None:
    """Raise a ConfigError unless `condition` holds."""
    if not condition:
        raise ConfigError(key, problem, fix)
