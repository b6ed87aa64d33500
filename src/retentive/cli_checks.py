"""One-line errors for config-group choices on the command line, before Hydra composes anything."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from retentive.errors import ConfigError

GROUP_CHOICE = re.compile(r"^(?P<group>[a-z_]+)=(?P<choice>[^\s,=]+)$")


def group_choices(conf_dir: Path, group: str) -> list[str]:
    return sorted(p.stem for p in (conf_dir / group).glob("*.yaml"))


def check_group_overrides(args: Sequence[str], conf_dir: Path) -> None:
    """`dataset=foo` with no conf/dataset/foo.yaml -> ConfigError naming the group and its choices.

    Sweeps (`a,b`), `+`/`~` overrides and nested keys are left to Hydra.
    """
    for arg in args:
        match = GROUP_CHOICE.match(arg)
        if not match or not (conf_dir / match["group"]).is_dir():
            continue
        group, choice = match["group"], match["choice"]
        if choice in ("null", "none") and group == "experiment":
            continue
        if not (conf_dir / group / f"{choice}.yaml").exists():
            raise ConfigError(group, f"unknown option '{choice}'",
                              f"choose one of: {', '.join(group_choices(conf_dir, group))}")
