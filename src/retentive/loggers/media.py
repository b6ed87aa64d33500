"""Images and tables to TensorBoard and W&B; CSV and other loggers are skipped (files stay in the run dir)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np


def _read_png(path: Path) -> np.ndarray:
    import matplotlib.image as mpimg

    image = mpimg.imread(str(path))  # float in [0, 1], HWC (RGBA for PNG)
    return image[..., :3] if image.ndim == 3 else image


def log_image(trainer: L.Trainer, key: str, path: str | Path, step: int | None = None) -> None:
    """The PNG at `path` as image `key`: TensorBoard `add_image`, W&B `log_image`. Rank 0 only."""
    if not trainer.is_global_zero or not trainer.loggers:
        return
    step = trainer.global_step if step is None else step
    image = None
    for logger in trainer.loggers:
        kind = type(logger).__name__
        if kind == "TensorBoardLogger":
            image = _read_png(Path(path)) if image is None else image
            logger.experiment.add_image(key, image, global_step=step, dataformats="HWC" if image.ndim == 3 else "HW")
        elif kind == "WandbLogger":
            logger.log_image(key=key, images=[str(path)], step=step)


def log_table(trainer: L.Trainer, key: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
              step: int | None = None) -> None:
    """A table (e.g. an accuracy or drift matrix) to W&B `log_table` and as markdown text to TensorBoard."""
    if not trainer.is_global_zero or not trainer.loggers:
        return
    step = trainer.global_step if step is None else step
    for logger in trainer.loggers:
        kind = type(logger).__name__
        if kind == "WandbLogger":
            logger.log_table(key=key, columns=list(columns), data=[list(r) for r in rows], step=step)
        elif kind == "TensorBoardLogger":
            header = "| " + " | ".join(map(str, columns)) + " |\n|" + "---|" * len(columns) + "\n"
            body = "".join("| " + " | ".join(_cell(v) for v in row) + " |\n" for row in rows)
            logger.experiment.add_text(key, header + body, global_step=step)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.4f}" if isinstance(value, float) else str(value)
