"""Turn finished runs (their results.json) into one CSV row: mean / std / seeds / commit / date."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from pathlib import Path

import yaml

from retentive.provenance import git_commit
from retentive.reproductions.table import judge, row_key
from retentive.tabulate import mean_std

# overrides that say where or how loudly a run ran, not what it computed
IGNORED = ("seed", "resume", "logger", "callbacks", "hydra.", "paths.", "trainer.enable_progress_bar",
           "checkpoint.")


class CollectError(ValueError):
    """Runs that cannot make one row (unfinished, mixed settings, a metric missing): one line."""


def results_path(run: Path) -> Path:
    return run if run.name == "results.json" else run / "results.json"


def read_run(run: Path) -> tuple[dict, list[str]]:
    """(results.json contents, the run's overrides from .hydra/overrides.yaml or [])."""
    path = results_path(Path(run))
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise CollectError(f"{path}: no readable results.json ({type(error).__name__})") from None
    overrides_file = path.parent / ".hydra" / "overrides.yaml"
    overrides = [str(o) for o in yaml.safe_load(overrides_file.read_text()) or []] if overrides_file.exists() else []
    return results, overrides


def config_of(overrides: Sequence[str]) -> str:
    """The overrides that change what a run computes, experiment first, as one command-line string."""
    kept = [o for o in overrides if not o.lstrip("+~").split("=")[0].startswith(IGNORED)]
    return " ".join(sorted(kept, key=lambda o: (not o.startswith("experiment="), kept.index(o))))


def _fmt(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".") if value == value else ""


def collect_row(runs: Sequence[Path], table: str, method: str, metric: str = "ACC", *,
                rows: Sequence[dict[str, str]] = (), commit: str | None = None, **given: str | None) -> dict:
    """One CSV row from `runs` (one seed each); its commit is the one(s) the runs recorded (for a run from
    before runs recorded one: the commit the existing row already names, else HEAD at collect time). Fields in
    `given` (paper, label, scenario, dataset, config, paper_value, note) override what the runs say; paper,
    label, paper_value, note and config not given are kept from the row of the same key in `rows` (e.g. a
    'not run' row waiting for its numbers)."""
    if not runs:
        raise CollectError("no run directories given")
    loaded = [(Path(run), *read_run(Path(run))) for run in runs]
    unfinished = [str(run) for run, results, _ in loaded if results.get("status", "complete") != "complete"]
    if unfinished:
        raise CollectError(f"runs not complete (status != complete): {', '.join(unfinished)}")
    configs = {config_of(overrides) for _, _, overrides in loaded}
    if len(configs) > 1 and not given.get("config"):
        raise CollectError(f"runs differ in their overrides ({' | '.join(sorted(configs))}); pass --config")
    for field in ("scenario", "dataset"):
        found = {str(results.get(field, "")) for _, results, _ in loaded}
        if len(found) > 1 and not given.get(field):
            raise CollectError(f"runs differ in {field}: {', '.join(sorted(found))}")
    by_seed: dict[int, float] = {}
    for run, results, _ in loaded:
        seed, value = results.get("seed"), results.get(metric)
        if not isinstance(value, int | float) or math.isnan(value):
            raise CollectError(f"{run}: results.json has no number for '{metric}'")
        if seed in by_seed:
            raise CollectError(f"two runs with seed {seed}")
        by_seed[seed] = 100.0 * float(value)
    seeds = sorted(by_seed)
    mean, std = mean_std([by_seed[s] for s in seeds])
    finished = max(results_path(run).stat().st_mtime for run, _, _ in loaded)
    recorded = {str(results["commit"]) for _, results, _ in loaded if results.get("commit")}
    unrecorded = any(not results.get("commit") for _, results, _ in loaded)
    first = loaded[0][1]
    row = {
        "paper": "", "table": table, "scenario": str(first.get("scenario") or ""),
        "dataset": str(first.get("dataset") or ""), "method": method, "label": "",
        "config": configs.pop() if len(configs) == 1 else "", "metric": metric, "paper_value": "",
        "ours_mean": _fmt(mean), "ours_std": _fmt(std), "ours_values": ";".join(_fmt(by_seed[s]) for s in seeds),
        "seeds": ";".join(str(s) for s in seeds), "n_seeds": str(len(seeds)), "commit": "",  # set below, once the existing row is known
        "date": dt.datetime.fromtimestamp(finished, dt.timezone.utc).date().isoformat(), "note": "",
    }
    row.update({key: str(value) for key, value in given.items() if value is not None})
    existing = next((r for r in rows if row_key(r) == row_key(row)), {})
    if unrecorded:  # the row's earlier commit(s) said where those older runs ran; HEAD only for a new row
        recorded |= set(filter(None, existing.get("commit", "").split(";"))) or {git_commit()}
    row["commit"] = commit or ";".join(sorted(recorded))
    for field in ("paper", "label", "paper_value", "note", "config"):
        if given.get(field) is None and existing.get(field) and not (field == "config" and row["config"]):
            row[field] = existing[field]
    if not row["label"]:  # a new metric of a method already in the table: the doc shows one line, one label
        sibling = next((r for r in rows if r.get("label") and all(r.get(k) == row[k] for k in
                                                                   ("table", "scenario", "dataset", "method"))), {})
        row["label"] = sibling.get("label", "")
    row["status"] = judge(row["paper_value"], row["ours_mean"])
    return row
