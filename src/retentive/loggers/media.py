"""Images, tables and embeddings to TensorBoard and W&B; CSV and other loggers are skipped (files stay
in the run dir)."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
from torch import Tensor


def _read_png(path: Path) -> np.ndarray:
    import matplotlib.image as mpimg

    image = mpimg.imread(str(path))  # float in [0, 1], HWC (RGBA for PNG)
    return image[..., :3] if image.ndim == 3 else image


def png_summary(key: str, data: bytes) -> Any | None:
    """A TensorBoard image summary holding the PNG bytes as they are (no decode and re-encode: that
    took most of the time of logging a figure); None if `data` is not a PNG."""
    from tensorboard.compat.proto.summary_pb2 import Summary

    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    width, height = struct.unpack(">II", data[16:24])
    channels = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}.get(data[25], 4)  # PNG colour type -> channels
    image = Summary.Image(height=height, width=width, colorspace=channels, encoded_image_string=data)
    return Summary(value=[Summary.Value(tag=key, image=image)])


def _tensorboard_image(experiment: Any, key: str, path: Path, step: int) -> None:
    summary = png_summary(key, path.read_bytes())
    if summary is not None and hasattr(experiment, "_get_file_writer"):
        experiment._get_file_writer().add_summary(summary, step)
        return
    image = _read_png(path)  # another writer (tensorboardX) or not a PNG: the public, slower route
    experiment.add_image(key, image, global_step=step, dataformats="HWC" if image.ndim == 3 else "HW")


def log_image(trainer: L.Trainer, key: str, path: str | Path, step: int | None = None) -> None:
    """The PNG at `path` as image `key`: TensorBoard image summary, W&B `log_image`. Rank 0 only."""
    if not trainer.is_global_zero or not trainer.loggers:
        return
    step = trainer.global_step if step is None else step
    for logger in trainer.loggers:
        kind = type(logger).__name__
        if kind == "TensorBoardLogger":
            _tensorboard_image(logger.experiment, key, Path(path), step)
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


def log_embedding(trainer: L.Trainer, key: str, features: Tensor, metadata: Sequence[Sequence[Any]],
                  metadata_header: Sequence[str], images: Tensor | None = None, step: int | None = None) -> bool:
    """Vectors with one metadata row each to TensorBoard's projector (`add_embedding`; `images`,
    NCHW in [0, 1], become the sprite). Other loggers have no projector. True if one took them."""
    if not trainer.is_global_zero or not trainer.loggers:
        return False
    step = trainer.global_step if step is None else step
    logged = False
    for logger in trainer.loggers:
        if type(logger).__name__ == "TensorBoardLogger":
            logger.experiment.add_embedding(
                features.detach().cpu().float(), metadata=[list(map(str, row)) for row in metadata],
                metadata_header=list(metadata_header), global_step=step, tag=key,
                label_img=None if images is None else images.detach().cpu().float())
            logged = True
    return logged


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.4f}" if isinstance(value, float) else str(value)
