"""The tables of docs/reproductions.md, generated from the CSV between marker comments.

A block in the doc (each marker on a line of its own):

    <!-- reproductions: table=vdv2019-split-mnist scenario=task -->
    (generated: everything up to the end marker is replaced)
    <!-- /reproductions -->

Every `key=value` in the opening marker filters the CSV's rows on that column; `values=yes` adds
the per-seed values. Text outside the blocks is never touched.
"""

from __future__ import annotations

import re

BEGIN = re.compile(r"^<!-- reproductions:(?P<options>[^>]*?)-->$", re.MULTILINE)
END = "<!-- /reproductions -->"
SCENARIO_NAMES = {"task": "Task-IL", "domain": "Domain-IL", "class": "Class-IL"}
DISPLAY_OPTIONS = ("values",)


def parse_options(text: str) -> dict[str, str]:
    options = {}
    for item in text.split():
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"marker option '{item}' is not key=value")
        options[key] = value
    return options


def _number(text: str) -> str:
    return f"{float(text):.2f}" if text else "–"


def _ours(row: dict[str, str] | None) -> str:
    if row is None or not row["ours_mean"]:
        return "–"
    if row["n_seeds"] in ("", "1"):
        return _number(row["ours_mean"])
    return f"{_number(row['ours_mean'])} ± {_number(row['ours_std'])}"


def render_table(rows: list[dict[str, str]], options: dict[str, str]) -> str:
    """The markdown table of the rows the block's filters select (CSV order, one line per run setting)."""
    filters = {k: v for k, v in options.items() if k not in DISPLAY_OPTIONS}
    chosen = [r for r in rows if all(r.get(k) == v for k, v in filters.items())]
    if not chosen:
        return "_(no rows in docs/reproductions.csv for this table yet)_"
    groups: dict[tuple[str, ...], dict[str, dict[str, str]]] = {}
    metrics: list[str] = []
    for row in chosen:
        groups.setdefault((row["scenario"], row["dataset"], row["method"], row["label"], row["config"]), {})[
            row["metric"]] = row
        if row["metric"] not in metrics:
            metrics.append(row["metric"])
    with_paper = [m for m in metrics if any(r["metric"] == m and r["paper_value"] for r in chosen)]
    lead = [(i, name) for i, name in ((0, "scenario"), (1, "dataset")) if len({g[i] for g in groups}) > 1]
    header = [name for _, name in lead] + ["method", "config"]
    for metric in metrics:
        if metric in with_paper:
            header.append("paper" if len(with_paper) == 1 else f"paper {metric}")
        header.append(f"ours {metric}")
    header += ["per seed"] if options.get("values") == "yes" else []
    header += ["seeds", "status", "commit"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, by_metric in groups.items():
        first = by_metric[metrics[0]] if metrics[0] in by_metric else next(iter(by_metric.values()))
        cells = [SCENARIO_NAMES.get(key[i], key[i]) if name == "scenario" else key[i] for i, name in lead]
        cells += [key[3] or key[2], f"`{key[4]}`" if key[4] else "–"]
        for metric in metrics:
            row = by_metric.get(metric)
            if metric in with_paper:
                cells.append((row or {}).get("paper_value") or "–")
            cells.append(_ours(row))
        if options.get("values") == "yes":
            cells.append(", ".join(_number(v) for v in first["ours_values"].split(";")) if first["ours_values"] else "–")
        cells += [first["n_seeds"] or "–", first["status"], first["commit"] or "–"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def blocks(doc: str) -> list[tuple[int, int, dict[str, str]]]:
    """(start of the generated text, its end, the marker's options) for every block, in order."""
    found = []
    for match in BEGIN.finditer(doc):
        end = doc.find("\n" + END, match.end()) + 1 or -1
        following = BEGIN.search(doc, match.end())
        if end < 0 or (following and following.start() < end):
            raise ValueError(f"marker '{match.group()}' has no '{END}' before the next block")
        found.append((match.end(), end, parse_options(match.group("options"))))
    return found


def render_doc(doc: str, rows: list[dict[str, str]]) -> str:
    """`doc` with every block's content regenerated from `rows`; the rest byte for byte the same."""
    out, position = [], 0
    for start, end, options in blocks(doc):
        out += [doc[position:start], "\n", render_table(rows, options), "\n"]
        position = end
    out.append(doc[position:])
    return "".join(out)


def unshown(doc: str, rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Rows that no block of `doc` selects."""
    selections = [{k: v for k, v in options.items() if k not in DISPLAY_OPTIONS} for _, _, options in blocks(doc)]
    return [r for r in rows if not any(all(r.get(k) == v for k, v in f.items()) for f in selections)]
