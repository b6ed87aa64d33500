"""Tabulate a Hydra multirun directory: mean ± std of results.json metrics per override set.

    python -m retentive.tabulate outputs/multirun/<date>/<time> [--over seed] [--percent] [--csv]

Every job folder holding a results.json is one run; its overrides come from `.hydra/overrides.yaml`.
Runs whose overrides differ only in the `--over` keys (default: seed) form one row, so a sweep such
as `strategy=ewc,si seed=0,1,2` gives one row per strategy with n = 3. Overrides that are the same
in every run are printed once above the table instead of in every row.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

DEFAULT_METRICS = ("ACC", "BWT", "FWT", "forgetting", "val_ACC")


def run_dirs(root: Path) -> list[Path]:
    """Every folder under `root` (itself included) holding a results.json, in path order."""
    return [results.parent for results in sorted(root.rglob("results.json"))]


def read_overrides(run_dir: Path, root: Path) -> dict[str, str]:
    """The run's `.hydra/overrides.yaml` as key -> value (`run` -> its folder when it has none)."""
    overrides_file = run_dir / ".hydra" / "overrides.yaml"
    if not overrides_file.exists():
        return {"run": str(run_dir.relative_to(root))}
    overrides: dict[str, str] = {}
    for item in yaml.safe_load(overrides_file.read_text()) or []:
        key, _, value = str(item).partition("=")
        overrides[key.lstrip("+~")] = value
    return overrides


def read_summary(run_dir: Path) -> dict:
    """The run's results.json; OSError or ValueError (naming the problem) when it is not readable."""
    summary = json.loads((run_dir / "results.json").read_text())
    if not isinstance(summary, dict):
        raise ValueError(f"holds a {type(summary).__name__}, not a results object")
    return summary


def read_runs(root: Path) -> list[tuple[dict[str, str], dict]]:
    """(overrides as key -> value, results.json contents) for every run under `root`."""
    runs = []
    for run_dir in run_dirs(root):
        try:
            summary = read_summary(run_dir)
        except (OSError, ValueError) as error:  # empty, truncated or foreign file: say which, keep going
            print(f"warning: skipped {run_dir / 'results.json'}: unreadable "
                  f"({str(error).splitlines()[0] or 'empty'})", file=sys.stderr)
            continue
        runs.append((read_overrides(run_dir, root), summary))
    return runs


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single run)."""
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else 0.0


def tabulate(runs: list[tuple[dict[str, str], dict]], over: Sequence[str], metrics: Sequence[str],
             scale: float = 1.0, include_incomplete: bool = False) -> tuple[dict[str, str], list[dict]]:
    """(overrides shared by all runs, one row per group: its overrides, n, statuses, mean/std).

    Runs that did not finish every task (still running, or failed) are counted but left out of
    the means unless `include_incomplete`: their ACC covers fewer tasks.
    """
    keys = sorted({k for overrides, _ in runs for k in overrides} - set(over))
    shared = {k: runs[0][0].get(k, "") for k in keys
              if len({overrides.get(k, "") for overrides, _ in runs}) == 1}
    varying = [k for k in keys if k not in shared]
    groups: dict[tuple[str, ...], list[dict]] = {}
    for overrides, results in runs:
        groups.setdefault(tuple(overrides.get(k, "") for k in varying), []).append(results)
    order = list(groups)
    for column in reversed(range(len(varying))):  # numeric columns ascending; others as first seen
        if all(_number(values[column]) is not None for values in order):
            order.sort(key=lambda values, c=column: _number(values[c]))
    rows = []
    for values in order:
        complete = [m for m in groups[values] if m.get("status", "complete") == "complete"]
        members = groups[values] if include_incomplete else complete
        row: dict = {"overrides": dict(zip(varying, values, strict=True)), "n": len(members),
                     "incomplete": len(groups[values]) - len(complete)}
        for metric in metrics:
            found = [m[metric] * scale for m in members if isinstance(m.get(metric), int | float)
                     and not math.isnan(m[metric])]
            row[metric] = mean_std(found) if found else None
        rows.append(row)
    return shared, rows


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def render(shared: dict[str, str], rows: list[dict], metrics: Sequence[str], csv: bool = False) -> str:
    varying = list(rows[0]["overrides"]) if rows else []
    if csv:
        header = varying + ["n"] + [f"{m}_{s}" for m in metrics for s in ("mean", "std")]
        lines = [",".join(header)]
        for row in rows:
            cells = [row["overrides"][k] for k in varying] + [str(row["n"])]
            for metric in metrics:
                cells += ["", ""] if row[metric] is None else [f"{row[metric][0]:.6g}", f"{row[metric][1]:.6g}"]
            lines.append(",".join(cells))
        return "\n".join(lines)
    lines = []
    if shared:
        lines.append("shared: " + " ".join(f"{k}={v}" for k, v in shared.items()))
        lines.append("")
    header = varying + ["n"] + list(metrics)
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        n = f"{row['n']}" + (f" (+{row['incomplete']} incomplete)" if row["incomplete"] else "")
        cells = [row["overrides"][k] for k in varying] + [n]
        cells += ["–" if row[m] is None else f"{row[m][0]:.2f} ± {row[m][1]:.2f}" for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m retentive.tabulate", description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, help="a multirun directory (or any folder of runs)")
    parser.add_argument("--over", nargs="*", default=["seed"], help="override keys averaged over (default: seed)")
    parser.add_argument("--metrics", nargs="*", default=list(DEFAULT_METRICS))
    parser.add_argument("--percent", action="store_true", help="multiply metrics by 100")
    parser.add_argument("--csv", action="store_true", help="CSV instead of a markdown table")
    parser.add_argument("--include-incomplete", action="store_true",
                        help="average runs that stopped before the last task too (default: count them only)")
    args = parser.parse_args(argv)
    if not args.directory.is_dir():
        print(f"error: {args.directory} is not a directory", file=sys.stderr)
        return 2
    runs = read_runs(args.directory)
    if not runs:
        print(f"error: no results.json under {args.directory} (has any run finished a task?)", file=sys.stderr)
        return 2
    shared, rows = tabulate(runs, args.over, args.metrics, 100.0 if args.percent else 1.0, args.include_incomplete)
    print(render(shared, rows, args.metrics, args.csv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
