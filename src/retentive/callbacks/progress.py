"""Rich progress bars on a terminal; nothing when output is piped (CI, log files, sweeps)."""

from __future__ import annotations

import sys

from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.callbacks.progress.rich_progress import RichProgressBarTheme


def progress_bar(leave: bool = False, force: bool = False) -> RichProgressBar | None:
    """A RichProgressBar when stdout is a terminal (or `force`); per-epoch log lines cover the rest."""
    if force or sys.stdout.isatty():
        return RichProgressBar(leave=leave, theme=RichProgressBarTheme(metrics_format=".3f"))
    return None
