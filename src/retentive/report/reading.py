"""Read a run dir for its report: every file may be missing or broken, and each problem is kept
(named in the report) instead of stopping it, so a killed or failed run still gets a report."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from retentive.tabulate import read_summary


@dataclass
class RunFiles:
    """What the report shows of one run dir, read once; `problems` names every file that failed."""

    run_dir: Path
    results: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    config_text: str | None = None
    overrides: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _first_line(error: BaseException) -> str:
    lines = str(error).splitlines()
    return (lines[0] if lines else "") or type(error).__name__


def read_run(run_dir: str | Path) -> RunFiles:
    """results.json, metrics.csv, .hydra/config.yaml and .hydra/overrides.yaml of `run_dir`."""
    files = RunFiles(Path(run_dir))
    try:
        files.results = read_summary(files.run_dir)
    except FileNotFoundError:
        files.problems.append("results.json: missing (the run stopped before its first epoch ended?)")
    except (OSError, ValueError) as error:
        files.problems.append(f"results.json: unreadable ({_first_line(error)})")
    files.history = _read_history(files.run_dir / "metrics.csv", files.problems)
    config = files.run_dir / ".hydra" / "config.yaml"
    try:
        files.config_text = config.read_text()
    except OSError as error:
        files.problems.append(f".hydra/config.yaml: {'missing' if not config.exists() else _first_line(error)}")
    files.overrides = _read_overrides(files.run_dir / ".hydra" / "overrides.yaml", files.problems)
    return files


def _read_overrides(path: Path, problems: list[str]) -> list[str]:
    if not path.exists():
        problems.append(".hydra/overrides.yaml: missing (not a Hydra run dir?)")
        return []
    try:
        items = yaml.safe_load(path.read_text()) or []
        if not isinstance(items, list):
            raise ValueError(f"holds a {type(items).__name__}, not a list of overrides")
        return [str(item) for item in items]
    except (OSError, ValueError, yaml.YAMLError) as error:
        problems.append(f".hydra/overrides.yaml: unreadable ({_first_line(error)})")
        return []


_NUMERIC = {"trained_task": int, "epoch": int, "step": int, "eval_task": int, "accuracy": float, "loss": float}


def _read_history(path: Path, problems: list[str]) -> list[dict[str, Any]]:
    """metrics.csv rows with numbers parsed; rows that do not parse are counted in `problems`."""
    if not path.exists():
        problems.append("metrics.csv: missing (no evaluation finished yet)")
        return []
    try:
        with path.open(newline="") as handle:
            raw = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        problems.append(f"metrics.csv: unreadable ({_first_line(error)})")
        return []
    rows, bad = [], 0
    for row in raw:
        try:
            parsed = {key: cast(row[key]) for key, cast in _NUMERIC.items()}
        except (KeyError, TypeError, ValueError):
            bad += 1
            continue
        rows.append({**parsed, "split": row.get("split") or ""})
    if bad:
        problems.append(f"metrics.csv: {bad} of {len(raw)} rows unreadable, left out of the curves")
    return rows


def finite(value: Any) -> bool:
    """A real number to plot or colour (bools, None and NaN are not)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
