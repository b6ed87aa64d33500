"""Plots of a continual run: accuracy of every task over the whole sequence, and the R heatmap,
written into the run dir and sent to the loggers (images, and R as a table) at every task end."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from retentive.callbacks.continual import ContinualCallback  # noqa: E402
from retentive.callbacks.results import ContinualResults  # noqa: E402
from retentive.loggers import log_image, log_table  # noqa: E402


def seen_task_average(rows: list[dict[str, Any]]) -> list[tuple[int, float]]:
    """(step, mean accuracy over tasks 0..trained task) for every evaluation pass in `rows`."""
    passes: dict[tuple[int, int], list[float]] = {}
    for row in rows:
        if 0 <= row["eval_task"] <= row["trained_task"]:
            passes.setdefault((row["step"], row["trained_task"]), []).append(row["accuracy"])
    return [(step, float(np.mean(values))) for (step, _), values in passes.items()]


def accuracy_curves_figure(history: list[dict[str, Any]], task_names: list[str], task_end_steps: list[int],
                           split: str = "val", reference: Sequence[float | None] | None = None) -> Figure:
    """Per-task accuracy at every evaluation of the sequence (x: training step), starting from the
    random-init evaluation at step 0 (test split, the FWT reference), with the mean over the seen
    tasks as a thick line and dashed task boundaries."""
    rows = [row for row in history if row["split"] == split]
    reference = list(reference or [])
    fig, ax = plt.subplots(figsize=(9.5, 4.5))
    for task, name in enumerate(task_names):
        points = [(row["step"], row["accuracy"]) for row in rows if row["eval_task"] == task]
        start = reference[task] if task < len(reference) else None
        if start is not None:
            points = [(0, start), *points]
        if points:
            xs, ys = zip(*points, strict=True)
            (line,) = ax.plot(xs, ys, marker="o", markersize=3, linewidth=1.2, label=f"task {task} ({name})")
            if start is not None:
                ax.plot([0], [start], marker="s", markersize=6, markerfacecolor="none", color=line.get_color())
    average = seen_task_average(rows)
    if average:
        xs, ys = zip(*average, strict=True)
        ax.plot(xs, ys, color="black", linewidth=3, alpha=0.75, label="mean of seen tasks")
    if any(v is not None for v in reference):
        ax.plot([], [], marker="s", markerfacecolor="none", color="grey", linestyle="",
                label="step 0: random init (test split)")
    for boundary in task_end_steps[:-1]:
        ax.axvline(boundary, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("training step (over the whole sequence)")
    ax.set_ylabel(f"{split} accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Accuracy of every task during training (dashed: task boundaries)")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return fig


def plot_accuracy_curves(history: list[dict[str, Any]], task_names: list[str], task_end_steps: list[int],
                         path: Path, split: str = "val", reference: Sequence[float | None] | None = None) -> Path:
    """`accuracy_curves_figure` saved as a PNG at `path`."""
    fig = accuracy_curves_figure(history, task_names, task_end_steps, split, reference)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def accuracy_matrix_figure(matrix: list[list[float | None]], task_names: list[str]) -> Figure:
    """Heatmap of `R[i][j]` in %: test accuracy on task j (columns) after training task i (rows)."""
    values = 100 * np.array([[np.nan if v is None else v for v in row] for row in matrix], dtype=float)
    fig, ax = plt.subplots(figsize=(1.1 * len(task_names) + 2, 0.9 * len(values) + 1.5))
    image = ax.imshow(values, vmin=0, vmax=100, cmap="viridis")
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            if not np.isnan(values[i, j]):
                ax.text(j, i, f"{values[i, j]:.1f}", ha="center", va="center",
                        color="white" if values[i, j] < 60 else "black", fontsize=8)
    ax.set_xticks(range(len(task_names)), [f"{j}: {n}" for j, n in enumerate(task_names)], rotation=45, ha="right")
    ax.set_yticks(range(len(values)), [f"after {i}" for i in range(len(values))])
    ax.set_xlabel("evaluated task")
    ax.set_ylabel("trained up to task")
    ax.set_title("Accuracy matrix R (test accuracy, %)")
    bar = fig.colorbar(image, ax=ax, fraction=0.046)
    bar.set_label("test accuracy (%)")
    fig.tight_layout()
    return fig


def plot_accuracy_matrix(matrix: list[list[float | None]], task_names: list[str], path: Path) -> Path:
    """`accuracy_matrix_figure` saved as a PNG at `path`."""
    fig = accuracy_matrix_figure(matrix, task_names)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def accuracy_table(summary: dict[str, Any], task_names: list[str]) -> tuple[list[str], list[list[Any]]]:
    """R as a table (accuracy in [0, 1]): one row per trained task, the random-init row first."""
    columns = ["trained up to", *[f"{j}: {name}" for j, name in enumerate(task_names)]]
    rows = [["random init", *summary["random_init_accuracy"]]] if any(
        v is not None for v in summary.get("random_init_accuracy", [])) else []
    rows += [[f"task {i}", *row] for i, row in enumerate(summary["accuracy_matrix"])]
    return columns, rows


class ContinualPlots(ContinualCallback):
    """Writes `accuracy_curves.png` and `accuracy_matrix.png` into the run dir at every task end and
    logs them to TensorBoard / W&B (`plots/accuracy_curves`, `plots/accuracy_matrix`) with R as a
    table (`tables/accuracy_matrix`: a W&B Table, markdown text in TensorBoard)."""

    def __init__(self, log_to_loggers: bool = True) -> None:
        self.log_to_loggers = log_to_loggers
        self._drawn: tuple[int, int] | None = None  # (evaluations, rows of R) the PNGs show

    def _draw(self, trainer: L.Trainer, send: bool) -> None:
        results = next((cb for cb in trainer.callbacks if isinstance(cb, ContinualResults)), None)
        if results is None or not trainer.is_global_zero:
            return
        shown = (len(results.history), results.matrix.rows_filled)
        if not send and shown == self._drawn:
            return  # the sequence ended right after a task end: the figures are up to date
        self._drawn = shown
        summary = results.summary()
        curves = plot_accuracy_curves(results.history, results.task_names, results.task_end_steps,
                                      results.output_dir / "accuracy_curves.png",
                                      reference=summary.get("random_init_accuracy"))
        heatmap = None
        if summary["accuracy_matrix"]:
            heatmap = plot_accuracy_matrix(summary["accuracy_matrix"], results.task_names,
                                           results.output_dir / "accuracy_matrix.png")
        if not (send and self.log_to_loggers):
            return
        log_image(trainer, "plots/accuracy_curves", curves, trainer.global_step)
        if heatmap is not None:
            log_image(trainer, "plots/accuracy_matrix", heatmap, trainer.global_step)
            log_table(trainer, "tables/accuracy_matrix", *accuracy_table(summary, results.task_names),
                      step=trainer.global_step)

    def on_task_end(self, trainer: L.Trainer, module: L.LightningModule, task: int) -> None:
        self._draw(trainer, send=True)

    def on_sequence_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._draw(trainer, send=False)  # redrawn only if a failure left evaluations after the last task end
