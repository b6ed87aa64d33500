"""Checks of raw data files before torchvision reads them, so a bad file gives one line naming the file
and what is wrong (torchvision's own reader fails with a bare assertion or a misleading "not found")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import Tensor

from retentive.errors import ConfigError

# idx header: 2 zero bytes, a type byte (0x08 = unsigned byte) and the number of dimensions
IDX_MAGIC = {"labels": 0x00000801, "images": 0x00000803}
FIX = "replace it with a fresh copy: delete the folder and run once with internet, or copy it again"


def _fail(path: Path, problem: str) -> None:
    raise ConfigError("paths.data_dir", f"{path}: {problem}", FIX)


def check_idx_file(path: Path, kind: str) -> tuple[int, ...]:
    """Magic number, dimensions and size of one uncompressed idx file (`kind`: labels | images);
    returns its dimensions. Reads the header only."""
    if not path.is_file():
        _fail(path, "missing (a folder of MNIST-format files needs all four idx files)")
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(16)
    if len(head) < 4:
        _fail(path, f"truncated: {size} bytes, shorter than the 4-byte idx magic number")
    magic = int.from_bytes(head[:4], "big")
    if magic != IDX_MAGIC[kind]:
        _fail(path, f"wrong magic number 0x{magic:08x} (an idx {kind} file starts with 0x{IDX_MAGIC[kind]:08x}); "
                    "not an uncompressed MNIST-format file")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(head) < header:
        _fail(path, f"truncated: expected at least {header} header bytes, found {size}")
    dims = tuple(int.from_bytes(head[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(dims))
    if size != expected:
        what = "truncated" if size < expected else "too long"
        _fail(path, f"{what}: expected {expected} bytes for dimensions {'x'.join(map(str, dims))}, found {size}")
    return dims


def check_idx_pair(folder: Path, prefix: str) -> None:
    """`<prefix>-images-idx3-ubyte` and `<prefix>-labels-idx1-ubyte` in `folder`: valid, 28x28, same count."""
    images_path = folder / f"{prefix}-images-idx3-ubyte"
    labels_path = folder / f"{prefix}-labels-idx1-ubyte"
    images = check_idx_file(images_path, "images")
    labels = check_idx_file(labels_path, "labels")
    if images[1:] != (28, 28):
        _fail(images_path, f"images are {images[1]}x{images[2]}, expected 28x28")
    if images[0] != labels[0]:
        _fail(labels_path, f"{labels[0]} labels for {images[0]} images in {images_path.name}")


def check_labels(labels: Tensor, num_classes: int, where: Path | str) -> None:
    """Every label in 0..num_classes-1; otherwise one line with the count, an example and the file."""
    bad = (labels < 0) | (labels >= num_classes)
    count = int(bad.sum())
    if count:
        example = int(labels[bad][0])
        raise ConfigError(
            "paths.data_dir",
            f"{where}: {count} of {len(labels)} labels outside 0..{num_classes - 1} (e.g. {example})",
            FIX,
        )
