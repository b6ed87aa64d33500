"""`python -m retentive.report <run dir | multirun dir | folder of runs> [--runs missing|all|none]`

Rebuilds report.html from what the folder holds. A run dir (it has results.json or .hydra/) gets
its run report; any other folder gets the table of the runs below it, and the runs lacking a report
get theirs (`--runs all` rewrites every run's, `--runs none` writes only the table)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from retentive.report.multirun_report import write_multirun_report
from retentive.report.run_report import write_run_report


def is_run_dir(path: Path) -> bool:
    return (path / "results.json").exists() or (path / ".hydra" / "config.yaml").exists()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m retentive.report", description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, help="a run dir, a multirun dir, or any folder of run dirs")
    parser.add_argument("--runs", choices=("missing", "all", "none"), default="missing",
                        help="for a folder of runs: which runs' own reports to (re)write (default: missing)")
    args = parser.parse_args(argv)
    if not args.directory.is_dir():
        print(f"error: {args.directory} is not a directory", file=sys.stderr)
        return 2
    if is_run_dir(args.directory):
        path = write_run_report(args.directory)
    else:
        path = write_multirun_report(args.directory, args.runs)
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
