"""Plots of a continual run: accuracy of every task over the whole sequence, and the R heatmap."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from retentive.callbacks.continual import ContinualCallback  # noqa: E402
from retentive.callbacks.results import ContinualResults  # noqa: E402


def plot_accuracy_curves(history: list[dict[str, Any]], task_names: list[str], task_end_steps: list[int],
                         path: Path, split: str = "val") -> Path:
    """Per-task accuracy at every evaluation of the sequence (x: training step); dashed task boundaries."""
    rows = [row for row in history if row["split"] == split]
    fig, ax = plt.subplots(figsize=(9.5, 4.5))
    for task, name in enumerate(task_names):
        points = [(row["step"], row["accuracy"]) for row in rows if row["eval_task"] == task]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", markersize=3, label=f"task {task} ({name})")
    for boundary in task_end_steps[:-1]:
        ax.axvline(boundary, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("training step (over the whole sequence)")
    ax.set_ylabel(f"{split} accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Accuracy of every task during training (dashed: task boundaries)")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_accuracy_matrix(matrix: list[list[float | None]], task_names: list[str], path: Path) -> Path:
    """Heatmap of `R[i][j]`: test accuracy on task j (columns) after training task i (rows)."""
    values = np.array([[np.nan if v is None else v for v in row] for row in matrix], dtype=float)
    fig, ax = plt.subplots(figsize=(1.1 * len(task_names) + 2, 0.9 * len(values) + 1.5))
    image = ax.imshow(values, vmin=0, vmax=1, cmap="viridis")
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            if not np.isnan(values[i, j]):
                ax.text(j, i, f"{100 * values[i, j]:.1f}", ha="center", va="center",
                        color="white" if values[i, j] < 0.6 else "black", fontsize=8)
    ax.set_xticks(range(len(task_names)), [f"{j}: {n}" for j, n in enumerate(task_names)], rotation=45, ha="right")
    ax.set_yticks(range(len(values)), [f"after {i}" for i in range(len(values))])
    ax.set_xlabel("evaluated task")
    ax.set_ylabel("trained up to task")
    ax.set_title("Accuracy matrix R (test, %)")
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


class ContinualPlots(ContinualCallback):
    """Writes `accuracy_curves.png` and `accuracy_matrix.png` into the run dir at every task end."""

    def _draw(self, trainer: L.Trainer) -> None:
        results = next((cb for cb in trainer.callbacks if isinstance(cb, ContinualResults)), None)
        if results is None or not trainer.is_global_zero:
            return
        summary = results.summary()
        plot_accuracy_curves(results.history, results.task_names, results.task_end_steps,
                             results.output_dir / "accuracy_curves.png")
        if summary["accuracy_matrix"]:
            plot_accuracy_matrix(summary["accuracy_matrix"], results.task_names,
                                 results.output_dir / "accuracy_matrix.png")

    def on_task_end(self, trainer: L.Trainer, module: L.LightningModule, task: int) -> None:
        self._draw(trainer)

    def on_sequence_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._draw(trainer)
