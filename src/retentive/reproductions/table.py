"""docs/reproductions.csv: one row per (table, scenario, dataset, method, metric), percent units."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from retentive.tabulate import mean_std

COLUMNS = (
    "paper",        # who published the value ("van de Ven & Tolias 2019"; "ours" for our own benchmarks)
    "table",        # the doc table the row belongs to (a block id in docs/reproductions.md)
    "scenario",     # task | domain | class (empty for single-task runs)
    "dataset",      # the stream class, as results.json names it (SplitMNIST, PermutedMNIST, ...)
    "method",       # the strategy / explanation config name (naive, ewc, cdep, ...)
    "label",        # how the doc shows the method (empty: the method)
    "config",       # the run's overrides: experiment=<name> plus any others, space-separated
    "metric",       # results.json key (ACC, forgetting, BWT, FWT), in percent
    "paper_value",  # as published ("98.64", "25.5 ± 0.4", "≈ 60"; empty: none to compare with)
    "ours_mean",    # mean over seeds (percent); empty: not run
    "ours_std",     # sample standard deviation over seeds (0 for one seed)
    "ours_values",  # per-seed values in seed order, ';'-separated (empty where they were not kept)
    "seeds",        # the seeds averaged, ';'-separated
    "n_seeds",
    "commit",       # git commit of the code (see docs/reproductions.md for older rows)
    "date",         # when the runs finished (YYYY-MM-DD)
    "status",       # reproduced | missed (vs paper_value, 1 point) | measured (nothing to compare) | not run
    "note",
)
KEY = ("table", "scenario", "dataset", "method", "metric")
TOLERANCE = 1.0  # points: |ours - paper| <= 1 counts as reproduced
STATUSES = ("reproduced", "missed", "measured", "not run")
DEFAULT_CSV = Path("docs/reproductions.csv")


def paper_number(text: str) -> float | None:
    """The first number in a published value ("≈ 20" -> 20, "25.5 ± 0.4" -> 25.5), None if there is none."""
    found = re.search(r"-?\d+(?:\.\d+)?", text or "")
    return float(found.group()) if found else None


def judge(paper_value: str, ours_mean: str | float | None, tolerance: float = TOLERANCE) -> str:
    """The status a row's numbers give: not run / measured / reproduced / missed."""
    if ours_mean in (None, ""):
        return "not run"
    paper = paper_number(paper_value)
    if paper is None:
        return "measured"
    return "reproduced" if abs(float(ours_mean) - paper) <= tolerance + 1e-9 else "missed"


def row_key(row: dict[str, str]) -> tuple[str, ...]:
    return tuple(row.get(column, "") for column in KEY)


def read_rows(path: Path = DEFAULT_CSV) -> list[dict[str, str]]:
    """The CSV's rows as dicts over COLUMNS (missing cells as ''), in file order."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f"{path}: columns must be {','.join(COLUMNS)}")
        return [{column: (row.get(column) or "") for column in COLUMNS} for row in reader]


def format_rows(rows: list[dict[str, str]]) -> str:
    """The CSV text of `rows` (fixed column order, '\\n' line ends: byte-identical for equal rows)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({column: row.get(column, "") for column in COLUMNS} for row in rows)
    return buffer.getvalue()


def write_rows(rows: list[dict[str, str]], path: Path = DEFAULT_CSV) -> None:
    """Replace the CSV atomically (temp file, rename)."""
    path = Path(path)
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(format_rows(rows), encoding="utf-8")
    temp.replace(path)


def upsert(rows: list[dict[str, str]], new: dict[str, str]) -> tuple[list[dict[str, str]], bool]:
    """`rows` with `new` replacing the row of the same key (kept in place) or appended; True if replaced."""
    key = row_key(new)
    for index, row in enumerate(rows):
        if row_key(row) == key:
            return [*rows[:index], new, *rows[index + 1:]], True
    return [*rows, new], False


def problems(rows: list[dict[str, str]]) -> list[str]:
    """Rows that contradict themselves: duplicate keys, unknown status, a status its numbers do not give,
    a mean or std the per-seed values do not give, a seed count that does not match."""
    found, seen = [], set()
    for number, row in enumerate(rows, start=2):  # line numbers in the file (header is line 1)
        where = f"line {number} ({' / '.join(v for v in row_key(row) if v)})"
        if row_key(row) in seen:
            found.append(f"{where}: a second row with the same table/scenario/dataset/method/metric")
        seen.add(row_key(row))
        if row["status"] not in STATUSES:
            found.append(f"{where}: status '{row['status']}' is not one of {', '.join(STATUSES)}")
        elif row["status"] != judge(row["paper_value"], row["ours_mean"]):
            found.append(f"{where}: status '{row['status']}' but its numbers give "
                         f"'{judge(row['paper_value'], row['ours_mean'])}'")
        if row["ours_values"]:
            mean, std = mean_std([float(v) for v in row["ours_values"].split(";")])
            if not row["ours_mean"] or abs(mean - float(row["ours_mean"])) > 0.006 \
                    or abs(std - float(row["ours_std"] or 0)) > 0.006:
                found.append(f"{where}: mean/std {row['ours_mean']}/{row['ours_std']} do not follow from "
                             f"its values {row['ours_values']} ({mean:.4f}/{std:.4f})")
        seeds = [s for s in row["seeds"].split(";") if s]
        if row["n_seeds"] and int(row["n_seeds"]) != len(seeds):
            found.append(f"{where}: n_seeds {row['n_seeds']} but {len(seeds)} seeds listed")
    return found
