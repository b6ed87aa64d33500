"""Figures of the per-epoch and per-task diagnostics: a confusion matrix and a t-SNE scatter.

Both are written atomically (temp file, rename), so a viewer or a logger reading the PNG while the
run rewrites it never sees half a file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from retentive.storage.atomic import atomic_write  # noqa: E402

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<", ">", "p")
ANNOTATE_UP_TO = 20  # classes; beyond that the counts would not be readable


def save_figure(fig: Figure, path: Path, dpi: int = 110) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=dpi))
    plt.close(fig)
    return path


def confusion_figure(matrix: np.ndarray, labels: Sequence[str], seen_classes: int, title: str) -> Figure:
    """Rows: true classes of the seen tasks; columns: predicted classes (plus one column for
    predictions of classes no seen task has, when there are any). Colour: % of the row (recall),
    numbers: counts (empty cells left blank)."""
    counts = np.asarray(matrix, dtype=np.int64)[:seen_classes]
    shown, names = counts[:, :seen_classes], list(labels[:seen_classes])
    later = counts[:, seen_classes:].sum(axis=1, keepdims=True)
    if later.any():
        shown, names = np.concatenate([shown, later], axis=1), [*names, "later\nclasses"]
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(100.0 * shown, totals, out=np.full(shown.shape, np.nan), where=totals > 0)
    size = 0.45 * max(len(names), 4) + 2.5
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(share, vmin=0, vmax=100, cmap="Blues", aspect="auto")
    if len(names) <= ANNOTATE_UP_TO:  # counts of the non-empty cells (text is most of a figure's cost)
        for i, j in zip(*np.nonzero(shown), strict=True):
            ax.text(j, i, str(shown[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if share[i, j] > 60 else "black")
    ticks = len(names) <= 2 * ANNOTATE_UP_TO
    if ticks:
        ax.set_xticks(range(len(names)), names, rotation=90 if len(names) > 12 else 0, fontsize=7)
        ax.set_yticks(range(shown.shape[0]), names[: shown.shape[0]], fontsize=7)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=9)
    bar = fig.colorbar(image, ax=ax, fraction=0.046)
    bar.set_label("% of the true class's samples")
    fig.tight_layout()
    return fig


def tsne_figure(points: np.ndarray, labels: np.ndarray, tasks: np.ndarray, task_names: Sequence[str],
                title: str) -> Figure:
    """Scatter of 2-D points, coloured by label (a legend up to 20 labels, else a colour bar of the
    label index), one marker per task."""
    fig, ax = plt.subplots(figsize=(8, 6))
    classes = [int(c) for c in np.unique(labels)]
    many = len(classes) > 20
    cmap = plt.get_cmap("viridis" if many else "tab10" if len(classes) <= 10 else "tab20")
    norm = matplotlib.colors.Normalize(vmin=min(classes), vmax=max(classes))
    colour = {c: cmap(norm(c)) if many else cmap(i) for i, c in enumerate(classes)}
    task_ids = [int(t) for t in np.unique(tasks)]
    for task in task_ids:
        rows = tasks == task
        ax.scatter(points[rows, 0], points[rows, 1], c=[colour[int(c)] for c in labels[rows]], s=14, alpha=0.8,
                   marker=MARKERS[task % len(MARKERS)], linewidths=0)
    task_handles = [Line2D([], [], marker=MARKERS[t % len(MARKERS)], color="grey", linestyle="",
                           label=f"task {t} ({task_names[t]})") for t in task_ids]
    legend = ax.legend(handles=task_handles, title="marker: task", fontsize=7, title_fontsize=8,
                       loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if many:
        bar = fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, fraction=0.046, pad=0.3)
        bar.set_label("label (class index)")
    else:
        ax.add_artist(legend)
        class_handles = [Line2D([], [], marker="o", color=colour[c], linestyle="", label=str(c)) for c in classes]
        ax.legend(handles=class_handles, title="colour: label", fontsize=7, title_fontsize=8,
                  loc="lower left", bbox_to_anchor=(1.01, 0.0), ncols=2 if len(classes) > 10 else 1)
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
