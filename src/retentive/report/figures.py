"""Figures for the report, all inlined as data URIs so report.html is one self-contained file:
every PNG the run wrote (grouped by folder) and training curves drawn from metrics.csv."""

from __future__ import annotations

import base64
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402

MAX_PER_FOLDER = 24  # the latest N figures of a folder (natural name order); the rest are listed
MAX_BYTES = 8 * 2**20  # one PNG larger than this is listed, not inlined
SKIPPED_FOLDERS = {"wandb", "tensorboard", "csv", "checkpoints"}  # loggers' own copies, not the run's figures


@dataclass
class Figure:
    name: str  # path relative to the run dir
    data_uri: str


@dataclass
class FigureGroup:
    folder: str  # relative to the run dir; "." for the run dir itself
    figures: list[Figure] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # older figures beyond MAX_PER_FOLDER
    unreadable: list[str] = field(default_factory=list)


def natural_key(text: str) -> list[Any]:
    """after_task10 after after_task9: digit runs compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def collect_figures(run_dir: Path, limit: int = MAX_PER_FOLDER) -> list[FigureGroup]:
    """Every PNG under `run_dir` (logger folders and hidden folders skipped), one group per folder."""
    by_folder: dict[str, list[Path]] = {}
    for path in run_dir.rglob("*.png"):
        parts = path.relative_to(run_dir).parts
        if any(part in SKIPPED_FOLDERS or part.startswith(".") for part in parts[:-1]):
            continue
        by_folder.setdefault(Path(*parts[:-1]).as_posix() if len(parts) > 1 else ".", []).append(path)
    groups = []
    for folder in sorted(by_folder, key=lambda f: (f != ".", natural_key(f))):
        paths = sorted(by_folder[folder], key=lambda p: natural_key(p.name))
        group = FigureGroup(folder, left_out=[p.name for p in paths[:-limit]] if len(paths) > limit else [])
        for path in paths[-limit:]:
            name = path.relative_to(run_dir).as_posix()
            problem = _check_png(path)
            if problem:
                group.unreadable.append(f"{name}: {problem}")
            else:
                group.figures.append(Figure(name, data_uri(path.read_bytes())))
        groups.append(group)
    return groups


def _check_png(path: Path) -> str | None:
    """Why `path` cannot be shown (too large, not a complete PNG), or None."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            return f"{size / 2**20:.1f} MiB, over the {MAX_BYTES // 2**20} MiB inline limit"
        with Image.open(path) as image:
            image.verify()
            if image.format != "PNG":
                return f"a {image.format} file, not a PNG"
    except Exception as error:  # PIL raises many kinds for damaged files
        return f"unreadable ({str(error).splitlines()[0] if str(error) else type(error).__name__})"
    return None


def curves_png(history: list[dict[str, Any]], task_names: list[str]) -> bytes | None:
    """Accuracy and loss of every task at every evaluation against the training step, from
    metrics.csv rows (validation rows; test rows when a run has none); dashed task boundaries."""
    split = "val" if any(row["split"] == "val" for row in history) else "test"
    rows = [row for row in history if row["split"] == split]
    if not rows:
        return None
    boundaries = sorted({row["step"] for row in history if row["split"] == "test" and row["trained_task"] >= 0})
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9.5, 6.5), sharex=True)
    for task in sorted({row["eval_task"] for row in rows}):
        points = sorted((row["step"], row["accuracy"], row["loss"]) for row in rows if row["eval_task"] == task)
        steps, accuracy, loss = zip(*points, strict=True)
        label = f"task {task} ({task_names[task]})" if task < len(task_names) else f"task {task}"
        top.plot(steps, accuracy, marker="o", markersize=3, label=label)
        bottom.plot(steps, loss, marker="o", markersize=3, label=label)
    for axis in (top, bottom):
        for step in boundaries[:-1]:
            axis.axvline(step, color="grey", linestyle="--", linewidth=1)
    top.set_ylim(-0.02, 1.02)
    top.set_ylabel(f"{split} accuracy (fraction)")
    top.set_title(f"Every task's {split} accuracy and loss during training (dashed: task ends)")
    top.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    bottom.set_ylabel(f"{split} loss (cross-entropy)")
    bottom.set_xlabel("training step (over the whole sequence)")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()
