"""`python -m retentive.reproductions render | check | collect` (see the package docstring)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from retentive.provenance import REPO
from retentive.reproductions.collect import CollectError, collect_row
from retentive.reproductions.render import render_doc, unshown
from retentive.reproductions.table import KEY, problems, read_rows, row_key, upsert, write_rows


def _default(relative: str) -> Path:
    here = Path(relative)
    return here if here.exists() else REPO / relative


def _render(csv: Path, doc: Path) -> int:
    text = doc.read_text(encoding="utf-8")
    rendered = render_doc(text, read_rows(csv))
    if rendered != text:
        temp = doc.with_name(doc.name + ".tmp")
        temp.write_text(rendered, encoding="utf-8")
        temp.replace(doc)
        print(f"rendered {doc} from {csv}")
    else:
        print(f"{doc} already matches {csv}")
    return 0


def _check(csv: Path, doc: Path) -> int:
    rows = read_rows(csv)
    text = doc.read_text(encoding="utf-8")
    found = problems(rows)
    if render_doc(text, rows) != text:
        found.append(f"{doc} is stale: its tables differ from {csv} (run `python -m retentive.reproductions render`)")
    found += [f"{csv}: row {' / '.join(v for v in row_key(r) if v)} is in no table of {doc}" for r in unshown(text, rows)]
    for line in found:
        print(f"error: {line}", file=sys.stderr)
    if not found:
        print(f"{doc} matches {csv} ({len(rows)} rows)")
    return 1 if found else 0


def _collect(args: argparse.Namespace) -> int:
    rows = read_rows(args.csv)
    given = {"paper": args.paper, "label": args.label, "scenario": args.scenario, "dataset": args.dataset,
             "config": args.config, "paper_value": args.paper_value, "note": args.note}
    for index, metric in enumerate(args.metric):
        # the published value belongs to the first metric (e.g. ACC), not to the extra ones (forgetting)
        row = collect_row(args.runs, args.table, args.method, metric, rows=rows, commit=args.commit,
                          **(given if index == 0 else {**given, "paper_value": None}))
        rows, replaced = upsert(rows, row)
        print(f"{'updated' if replaced else 'added'} {' / '.join(row[k] for k in KEY if row[k])}: "
              f"{row['ours_mean']} ± {row['ours_std']} over seeds {row['seeds']} ({row['status']})")
    write_rows(rows, args.csv)
    return 0 if args.no_render else _render(args.csv, args.doc)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m retentive.reproductions",
                                     description="docs/reproductions.csv -> the tables of docs/reproductions.md")
    parser.add_argument("--csv", type=Path, default=_default("docs/reproductions.csv"))
    parser.add_argument("--doc", type=Path, default=_default("docs/reproductions.md"))
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("render", help="regenerate the doc's tables from the CSV")
    commands.add_parser("check", help="exit 1 when the doc's tables differ from the CSV or a row contradicts itself")
    for name in ("collect", "add"):
        sub = commands.add_parser(name, help="write/update CSV rows from finished runs (one seed each), then render")
        sub.add_argument("runs", nargs="+", type=Path, help="run directories (or their results.json)")
        sub.add_argument("--table", required=True, help="the doc table (block id), e.g. vdv2019-permuted-mnist")
        sub.add_argument("--method", required=True, help="strategy / explanation config name, e.g. ewc")
        sub.add_argument("--metric", nargs="+", default=["ACC"], help="results.json keys (default ACC)")
        sub.add_argument("--paper", help="who published the comparison value")
        sub.add_argument("--paper-value", help="the published value of the first --metric (kept from the existing row if omitted)")
        sub.add_argument("--label", help="how the doc shows the method")
        sub.add_argument("--scenario", help="default: from results.json")
        sub.add_argument("--dataset", help="default: the stream class in results.json")
        sub.add_argument("--config", help="default: the runs' shared overrides (.hydra/overrides.yaml)")
        sub.add_argument("--note")
        sub.add_argument("--commit", help="default: the commit(s) the runs recorded, else git HEAD of this checkout")
        sub.add_argument("--no-render", action="store_true", help="only write the CSV")
    args = parser.parse_args(argv)
    try:
        if args.command == "render":
            return _render(args.csv, args.doc)
        if args.command == "check":
            return _check(args.csv, args.doc)
        return _collect(args)
    except (CollectError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
