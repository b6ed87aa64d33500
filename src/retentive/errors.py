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


def require(condition: bool, key: str, problem: str, fix: str = "") -> None:
    """Raise a ConfigError unless `condition` holds."""
    if not condition:
        raise ConfigError(key, problem, fix)
