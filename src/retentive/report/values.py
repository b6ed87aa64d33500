"""Sort results.json into what the report shows: headline numbers, other scalars, per-task rows,
matrices and the rest. Generic on purpose: keys other parts of the project add later (explanation
drift, forgetting of explanations) show up without a change here."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from matplotlib import colormaps
from matplotlib.colors import to_hex

from retentive.report.reading import finite

FACTS = ("name", "status", "dataset", "scenario", "strategy", "explanation", "seed")
HEADLINE = ("ACC", "BWT", "forgetting", "FWT")
LABELS = ("task_names",)  # used as row/column labels, not shown on their own
MATRIX_CAPTIONS = {
    "accuracy_matrix": "R[i][j]: test accuracy on task j (column) after training task i (row)",
}
ROW_PREFIX = {"accuracy_matrix": "after "}


@dataclass
class Cell:
    text: str
    value: float | None = None  # raw number, for data-value / sorting
    style: str = ""


@dataclass
class Matrix:
    key: str
    caption: str
    row_labels: list[str]
    col_labels: list[str]
    rows: list[list[Cell]]
    scale: str


@dataclass
class Summary:
    facts: list[tuple[str, str]] = field(default_factory=list)
    headline: list[tuple[str, Cell]] = field(default_factory=list)  # ACC, BWT, forgetting, FWT
    scalars: list[tuple[str, Cell]] = field(default_factory=list)
    per_task: list[tuple[str, list[Cell]]] = field(default_factory=list)
    matrices: list[Matrix] = field(default_factory=list)
    other: list[tuple[str, str]] = field(default_factory=list)
    task_names: list[str] = field(default_factory=list)


def status_class(status: str) -> str:
    """Badge colour: green complete, amber running or interrupted (resumable), red otherwise."""
    if status == "complete":
        return "ok"
    return "running" if status == "running" or status.startswith("interrupted") else "bad"


def fmt(value: Any, key: str = "") -> str:
    """A value as the report prints it: 4 decimals for fractions, 2 for seconds, integers as is."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:,}" if key.endswith("bytes") else str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.2f}" if key.endswith("seconds") else f"{value:.4f}"
    return str(value)


def flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted key, leaf) pairs in file order; dicts are opened, lists are leaves."""
    leaves: list[tuple[str, Any]] = []
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            leaves += flatten(value, dotted + ".")
        else:
            leaves.append((dotted, value))
    return leaves


def _numbers(values: list[Any]) -> bool:
    return all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in values)


def is_matrix(value: Any) -> bool:
    """A non-empty rectangular list of lists of numbers (None allowed for cells not measured)."""
    return (isinstance(value, list) and bool(value) and all(isinstance(row, list) and row for row in value)
            and len({len(row) for row in value}) == 1 and all(_numbers(row) for row in value))


def summarize(results: dict[str, Any]) -> Summary:
    """Split `results` (a results.json object) into the report's sections."""
    names = results.get("task_names")
    summary = Summary(task_names=[str(n) for n in names] if isinstance(names, list) else [])
    headline = {key: results[key] for key in HEADLINE if key in results}
    summary.headline = [(key, _cell(value, key)) for key, value in headline.items()]
    for key, value in flatten(results):
        if key in headline or key in LABELS:
            continue
        if key in FACTS and not isinstance(value, list | dict):
            summary.facts.append((key, fmt(value, key)))
        elif value is None or isinstance(value, str | int | float | bool):
            summary.scalars.append((key, _cell(value, key)))
        elif is_matrix(value):
            summary.matrices.append(_matrix(key, value, summary.task_names))
        elif isinstance(value, list) and value and _numbers(value):
            summary.per_task.append((key, [_cell(v, key) for v in value]))
        else:
            text = json.dumps(value)
            summary.other.append((key, text if len(text) <= 400 else text[:400] + " …"))
    return summary


def _cell(value: Any, key: str = "") -> Cell:
    return Cell(fmt(value, key), float(value) if finite(value) else None)


def _labels(count: int, names: list[str], prefix: str = "") -> list[str]:
    if count == len(names):
        return [f"{prefix}{i}: {names[i]}" for i in range(count)]
    return [f"{prefix}{i}" for i in range(count)]


def _matrix(key: str, value: list[list[Any]], names: list[str]) -> Matrix:
    numbers = [v for row in value for v in row if finite(v)]
    low, high = min([0.0, *numbers]), max([1.0, *numbers])
    cmap = colormaps["viridis"]
    rows = []
    for row in value:
        cells = []
        for v in row:
            cell = _cell(v)
            if cell.value is not None:
                red, green, blue, _ = cmap((cell.value - low) / (high - low))
                ink = "#000" if 0.299 * red + 0.587 * green + 0.114 * blue > 0.5 else "#fff"
                cell.style = f"background:{to_hex((red, green, blue))};color:{ink}"
            cells.append(cell)
        rows.append(cells)
    caption = MATRIX_CAPTIONS.get(key, f"row i, column j of results.json's {key}")
    scale = f"colour: viridis from {fmt(low)} (dark) to {fmt(high)} (bright)"
    return Matrix(key, caption, _labels(len(value), names, ROW_PREFIX.get(key, "")),
                  _labels(len(value[0]), names), rows, scale)
