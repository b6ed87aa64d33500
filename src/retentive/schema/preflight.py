"""Preflight: compose the config a command line asks for and check it before torch is imported.

Every config mistake then costs well under 2 s (importing the training stack takes ~7 s) and is
reported as one line: the key, the bad value and what is allowed (or the nearest valid key).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from retentive.errors import ConfigError
from retentive.schema.check import check_config, leaves

HYDRA_FLAGS = ("--help", "-h", "--hydra-help", "--info", "-i", "--cfg", "-c", "--resolve", "--shell-completion",
               "-sc", "--package", "-p")


def _compose(overrides: Sequence[str]):
    from retentive.config import compose_config

    return compose_config(list(overrides), "preflight")


def _bad_key(message: str) -> str | None:
    found = re.search(r"(?:Could not override|Could not append to config\.) ?'([^']+)'", message) or re.search(
        r"Key '([^']+)' is not in struct", message)
    return found.group(1) if found else None


def _nearest(key: str, overrides: Sequence[str]) -> str:
    """The closest valid dotted keys to a mistyped `key` in the config composed without it."""
    rest = [o for o in overrides if not o.split("=", 1)[0].lstrip("+~").startswith(key)]
    try:
        known = [k for k, _ in leaves(_compose(rest))]
    except Exception:  # the rest does not compose either: no suggestion, the key is still named
        return ""
    close = difflib.get_close_matches(key, known, n=2, cutoff=0.6)
    if not close:  # a mistyped last part: compare within the same parent
        parent = key.rsplit(".", 1)[0] if "." in key else ""
        siblings = [k for k in known if k.rsplit(".", 1)[0] == parent]
        close = difflib.get_close_matches(key, siblings, n=2, cutoff=0.4)
    return " or ".join(close)


def _compose_checked(overrides: Sequence[str]) -> None:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        cfg = _compose(overrides)
    except (HydraException, OmegaConfBaseException) as error:
        message = str(error)
        key = _bad_key(message)
        if key is not None:
            nearest = _nearest(key, overrides)
            fix = f"did you mean {nearest}?" if nearest else "see docs/reference/config for the keys"
            raise ConfigError(key, "is not a config key", f"{fix} To add a new key on purpose: +{key}=...") from None
        first = next((line for line in message.splitlines() if line.strip()), message)
        raise ConfigError("overrides", first.strip(), "check the override syntax: key=value, group=option") from None
    check_config(cfg)
    check_devices(str(cfg.trainer.get("accelerator", "auto")))


def _sweep_variants(overrides: Sequence[str]) -> list[list[str]]:
    """One override list per value of every simple sweep (`a,b,c`); other sweeps (optuna ranges)
    are left out of the check (their values are chosen later by the sweeper)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(overrides))
    base: list[str] = []
    sweeps: list[tuple[str, list[str]]] = []
    for text, override in zip(overrides, parsed, strict=True):
        if not override.is_sweep_override():
            base.append(text)
            continue
        if override.is_choice_sweep():
            values = [str(v) for v in override.sweep_string_iterator()]
            sweeps.append((override.get_key_element(), values))
    if not sweeps:
        return [base]
    firsts = [f"{key}={values[0]}" for key, values in sweeps]
    variants = []
    for i, (key, values) in enumerate(sweeps):
        for value in values:
            variants.append(base + firsts[:i] + [f"{key}={value}"] + firsts[i + 1:])
    return variants


def preflight(args: Sequence[str]) -> None:
    """Raise a ConfigError for the first mistake in `args` (train's command line, resume expanded)."""
    if any(arg in HYDRA_FLAGS or arg.startswith("--config") for arg in args):
        return  # Hydra's own informational modes
    overrides = [a for a in args if not a.startswith("-")]
    for variant in _sweep_variants(overrides):
        _compose_checked(variant)


def check_devices(accelerator: str) -> None:
    """`trainer.accelerator=gpu|cuda` on a machine without an NVIDIA driver: one line, not a Lightning traceback."""
    import os

    if accelerator in ("gpu", "cuda") and not (os.path.exists("/dev/nvidiactl") or os.path.exists("/proc/driver/nvidia")):
        raise ConfigError("trainer.accelerator", f"'{accelerator}' asked for, but this machine has no NVIDIA GPU",
                          "use trainer=default (accelerator auto/cpu)")
