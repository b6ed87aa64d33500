"""Markdown reference of every config group, option and key, read from `conf/` itself.

Each yaml's leading comment block describes the option; each key's trailing `# comment` is its
meaning. Values are the defaults as written (interpolations shown verbatim).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

_KEY = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z_][\w.-]*)\s*:(?P<rest>.*)$")


def header_comment(text: str) -> str:
    """The comment lines at the top of a yaml (before the first key), without `#` and package markers."""
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("#"):
            if stripped:
                break
            continue
        body = stripped.lstrip("#").strip()
        if body.startswith("@package"):
            continue
        lines.append(body)
    return " ".join(lines).strip()


def key_comments(text: str) -> dict[str, str]:
    """Dotted key -> its trailing comment (or the comment on the line above it)."""
    comments: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            pending = stripped.lstrip("#").strip()
            continue
        match = _KEY.match(line)
        if not match or stripped.startswith("-"):
            pending = ""
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match["key"]))
        dotted = ".".join(key for _, key in stack)
        rest = match["rest"]
        trailing = rest.split(" #", 1)[1].strip() if " #" in rest else ""
        comments[dotted] = trailing or (pending if comments else "")  # the file's header is not the first key's
        pending = ""
    return comments


def flatten(node: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted key, leaf value) pairs; lists are leaves."""
    if isinstance(node, dict) and node:
        return [pair for key, value in node.items() for pair in flatten(value, f"{prefix}{key}.")]
    return [(prefix.rstrip("."), node)]


def _cell(value: Any) -> str:
    text = "null" if value is None else yaml.safe_dump(value, default_flow_style=True).strip()
    text = text.removesuffix("...").strip()
    return "`" + text.replace("|", "\\|").replace("`", "'") + "`"


def _text(comment: str) -> str:
    """A yaml comment as table-cell markdown: no column breaks, no accidental reference links."""
    return comment.replace("|", "/").replace("[", "\\[").replace("]", "\\]")


def _allowed(dotted: str) -> str:
    """The schema's constraint on a key (retentive.schema.rules), or blank where it has none."""
    from retentive.schema.check import rule_for

    rule = rule_for(dotted)
    return _text(rule.allowed()) if rule is not None and rule.kind != "str" else ""


def option_section(path: Path, prefix: str = "") -> str:
    """One option (a yaml file): its description and a table of keys, defaults, constraints and meanings;
    `prefix` is the group's key in the composed config (e.g. `strategy.`) for the schema lookup."""
    text = path.read_text()
    data = yaml.safe_load(text) or {}
    comments = key_comments(text)
    rows = [(key, value) for key, value in flatten(data) if key and key != "defaults"]
    out = [f"### `{path.stem}`\n", _text(header_comment(text)) or "_(no description)_", ""]
    if isinstance(data, dict) and data.get("defaults"):
        out.append(f"Composes: {_cell(data['defaults'])}\n")
    if rows:
        out += ["| key | default | allowed | meaning |", "|---|---|---|---|"]
        out += [f"| `{key}` | {_cell(value)} | {_allowed(prefix + key)} | {_text(comments.get(key, ''))} |"
                for key, value in rows]
    return "\n".join(out) + "\n"


def group_page(group_dir: Path) -> str:
    """A page for one config group: every option, chosen on the command line as `<group>=<option>`."""
    group = group_dir.name
    options = sorted(group_dir.glob("*.yaml"))
    head = [f"# `{group}` config group\n",
            f"Choose an option with `python -m retentive.train {group}=<option>`; override one key with "
            f"`{group}.<key>=<value>` (Hydra syntax). Generated from `conf/{group}/`.\n",
            "Options: " + ", ".join(f"`{p.stem}`" for p in options) + "\n"]
    prefix = "" if group in ("experiment", "debug", "hparams_search", "hydra") else f"{group}."
    return "\n".join(head) + "\n" + "\n".join(option_section(p, prefix) for p in options)


def top_level_page(train_yaml: Path) -> str:
    """The keys of `conf/train.yaml` (seed, schedule, loader, evaluation, ...)."""
    return ("# Top-level keys (`conf/train.yaml`)\n\nOverride any of them on the command line, e.g. "
            "`python -m retentive.train seed=1 schedule.epochs_per_task=2`.\n\n" + option_section(train_yaml))


def groups(conf_dir: Path) -> list[Path]:
    return sorted(p for p in conf_dir.iterdir() if p.is_dir() and any(p.glob("*.yaml")))


def index_page(conf_dir: Path) -> str:
    links = "\n".join(f"- [`{g.name}`]({g.name}.md): " + ", ".join(f"`{p.stem}`" for p in sorted(g.glob("*.yaml")))
                      for g in groups(conf_dir))
    return ("# Config reference\n\nEvery config group and its options, generated from `conf/` at build time.\n\n"
            "- [Top-level keys](top_level.md)\n" + links + "\n")
