"""report.html of a multirun (or any folder of run dirs): one sortable row per run with its
overrides, status, ACC/BWT/forgetting/FWT, drift numbers and a link to the run's own report.
Runs are found and read with `retentive.tabulate`'s functions, so both commands see the same runs."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from retentive.report.figures import natural_key
from retentive.report.reading import finite
from retentive.report.render import REPORT_NAME, render, write_html
from retentive.report.run_report import write_run_report
from retentive.report.values import HEADLINE, flatten, fmt, status_class
from retentive.tabulate import read_overrides, read_summary, run_dirs, tabulate

log = logging.getLogger("retentive")

EXTRA_PREFIXES = ("drift", "explanation_drift", "explanation_forgetting")  # scalar leaves become columns
MAX_EXTRA = 12


@dataclass
class RunRow:
    folder: str  # relative to the multirun dir
    link: str | None  # relative URL of the run's report.html, None when it has none
    overrides: dict[str, str]
    status: str
    values: dict[str, Any] = field(default_factory=dict)  # flattened results.json
    problem: str | None = None


def find_runs(root: Path) -> list[Path]:
    """Run dirs under `root`: those with a results.json, and Hydra jobs that stopped before one."""
    jobs = {path.parent.parent for path in root.rglob("overrides.yaml") if path.parent.name == ".hydra"}
    found = set(run_dirs(root)) | jobs
    return sorted(found, key=lambda d: natural_key(d.relative_to(root).as_posix()))


def read_rows(root: Path) -> list[RunRow]:
    rows = []
    for run_dir in find_runs(root):
        folder = run_dir.relative_to(root).as_posix()
        try:
            overrides = read_overrides(run_dir, root)
        except (OSError, ValueError, yaml.YAMLError):
            overrides = {"run": folder}
        row = RunRow(folder, None, overrides, "unknown")
        try:
            row.values = dict(flatten(read_summary(run_dir)))
            row.status = str(row.values.get("status", "unknown"))
        except FileNotFoundError:
            row.problem, row.status = "no results.json", "no results"
        except (OSError, ValueError) as error:
            row.problem, row.status = f"results.json unreadable ({str(error).splitlines()[0]})", "unreadable"
        if (run_dir / REPORT_NAME).exists():
            row.link = quote(f"{folder}/{REPORT_NAME}")
        rows.append(row)
    return rows


def extra_columns(rows: list[RunRow]) -> list[str]:
    """Numeric drift / explanation-forgetting leaves found in any run, in first-seen order."""
    seen: dict[str, None] = {}
    for row in rows:
        for key, value in row.values.items():
            if key.split(".")[0] in EXTRA_PREFIXES and finite(value):
                seen.setdefault(key)
    return list(seen)[:MAX_EXTRA]


def _sweep(root: Path, problems: list[str]) -> list[str]:
    """The sweep's own overrides (e.g. `seed=0,1`) from Hydra's multirun.yaml, if there is one."""
    path = root / "multirun.yaml"
    if not path.exists():
        return []
    try:
        config = yaml.safe_load(path.read_text()) or {}
        return [str(item) for item in config.get("hydra", {}).get("overrides", {}).get("task", []) or []]
    except (OSError, ValueError, AttributeError, yaml.YAMLError) as error:
        problems.append(f"multirun.yaml: unreadable ({str(error).splitlines()[0]})")
        return []


def _cell(value: Any, key: str) -> dict[str, str]:
    return {"text": fmt(value, key) if value is not None else "–", "sort": repr(float(value)) if finite(value) else ""}


def multirun_report_html(root: str | Path) -> str:
    root = Path(root)
    problems: list[str] = []
    sweep = _sweep(root, problems)
    rows = read_rows(root)
    keys = sorted({key for row in rows for key in row.overrides})
    shared = {k: rows[0].overrides.get(k, "") for k in keys
              if len({row.overrides.get(k, "") for row in rows}) == 1} if len(rows) > 1 else {}
    varying = [k for k in keys if k not in shared]
    metrics = [*HEADLINE, *extra_columns(rows), "seconds"]
    table = [{
        "folder": row.folder, "link": row.link, "order": str(position), "status": row.status,
        "status_class": status_class(row.status),
        "overrides": [row.overrides.get(k, "") for k in varying],
        "metrics": [_cell(row.values.get(m), m) for m in metrics], "problem": row.problem,
    } for position, row in enumerate(rows)]
    readable = [(row.overrides, row.values) for row in rows if row.problem is None]
    grouped = None
    if "seed" in varying and readable:
        _, groups = tabulate(readable, ["seed"], [m for m in metrics if m != "seconds"])
        if any(group["n"] + group["incomplete"] > 1 for group in groups):
            grouped = {"keys": list(groups[0]["overrides"]) if groups else [], "rows": groups,
                       "metrics": [m for m in metrics if m != "seconds"]}
    return render("multirun.html.j2", title=root.resolve().name, root=str(root.resolve()), sweep=sweep,
                  is_multirun=(root / "multirun.yaml").exists(), problems=problems, shared=shared,
                  varying=varying, metrics=metrics, rows=table, grouped=grouped, fmt=fmt)


def write_multirun_report(root: str | Path, run_reports: str = "missing") -> Path:
    """Write `<root>/report.html`. `run_reports`: "missing" also writes the report of every run that
    has none (so every link resolves), "all" rewrites every run's, "none" only the table."""
    root = Path(root)
    for run_dir in find_runs(root) if run_reports != "none" else []:
        if run_reports == "all" or not (run_dir / REPORT_NAME).exists():
            try:
                write_run_report(run_dir)
            except Exception as error:  # one run's report must not cost the table
                log.warning("%s/%s not written: %s: %s", run_dir, REPORT_NAME, type(error).__name__, error)
    return write_html(root / REPORT_NAME, multirun_report_html(root))
