"""Loss and accuracy against the fraction replaced, one line per importance (and direction)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FormatStrFormatter, NullFormatter  # noqa: E402

STYLE = {"least": "-", "most": "--"}


def plot_sweep(rows: Sequence[dict[str, Any]], path: str | Path, split: str, title: str) -> Path:
    """Two panels (loss on a log scale, accuracy) for rows of one scope/replace setting."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 5))
    names = list(dict.fromkeys(r["importance"] for r in rows))
    colours = {n: plt.get_cmap("tab10")(i % 10) for i, n in enumerate(names)}
    for name in names:
        for remove in ("least", "most"):
            line = sorted((r for r in rows if r["importance"] == name and r["remove"] == remove), key=lambda r: r["p"])
            if not line:
                continue
            p = [r["p"] for r in line]
            label = f"{name} ({remove} important replaced)"
            ax_loss.plot(p, [r["loss"] for r in line], STYLE[remove], marker=".", color=colours[name], label=label)
            ax_acc.plot(p, [100 * r["accuracy"] for r in line], STYLE[remove], marker=".", color=colours[name],
                        label=label)
    ax_loss.set_yscale("log")
    ax_loss.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax_loss.yaxis.set_minor_formatter(NullFormatter())
    ax_loss.set_xlabel("fraction p of weights replaced")
    ax_loss.set_ylabel(f"{split} loss (mean cross-entropy, log scale)")
    ax_loss.set_title(f"{split} loss after surgery")
    ax_acc.set_xlabel("fraction p of weights replaced")
    ax_acc.set_ylabel(f"{split} accuracy (%)")
    ax_acc.set_title(f"{split} accuracy after surgery")
    ax_acc.set_ylim(0, 100)
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
    handles, labels = ax_acc.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=10)
    rows_of_legend = -(-len(labels) // 4)
    fig.tight_layout(rect=(0, 0.05 * rows_of_legend, 1, 1))
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
