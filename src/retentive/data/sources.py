"""Raw image sources: MNIST through torchvision's own loader, and scikit-learn's bundled digits."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from retentive.errors import ConfigError


@dataclass(frozen=True)
class ImageSplit:
    """uint8 images `[N, C, H, W]` with int64 labels."""

    images: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, index: Tensor) -> ImageSplit:
        return ImageSplit(self.images[index], self.labels[index])


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """`data_dir` if given, else env `DATA_DIR`, else `data/`."""
    return Path(data_dir or os.environ.get("DATA_DIR") or "data").expanduser()


def _online() -> bool:
    return os.environ.get("RETENTIVE_OFFLINE", "0") != "1"


@lru_cache(maxsize=4)
def _load_mnist_cached(root: str, train: bool, download: bool) -> ImageSplit:
    from torchvision.datasets import MNIST

    dataset = MNIST(root=root, train=train, download=download)
    return ImageSplit(dataset.data.unsqueeze(1).contiguous(), dataset.targets.long())


def load_mnist(data_dir: str | os.PathLike | None = None, train: bool = True, download: bool = True) -> ImageSplit:
    """MNIST via `torchvision.datasets.MNIST` (downloads when it can; one clear line when not)."""
    root = resolve_data_dir(data_dir).resolve()
    try:
        return _load_mnist_cached(str(root), train, download and _online())
    except (RuntimeError, OSError) as error:  # torchvision: "Dataset not found" / URLError offline
        raise ConfigError(
            "paths.data_dir",
            f"MNIST not found under {root} and could not be downloaded ({type(error).__name__})",
            "set DATA_DIR (or paths.data_dir=...) to a folder holding MNIST/raw, e.g. DATA_DIR=../shared/data",
        ) from None


@lru_cache(maxsize=1)
def _digits() -> tuple[Tensor, Tensor]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.clip(bunch.images * 16.0, 0, 255).astype(np.uint8)  # 0..16 -> 0..255
    return torch.from_numpy(images).unsqueeze(1), torch.from_numpy(bunch.target).long()


def load_digits_split(train: bool = True, test_fraction: float = 0.25) -> ImageSplit:
    """scikit-learn's bundled 8x8 digits (offline), with a fixed stratified train/test split."""
    from sklearn.model_selection import train_test_split

    images, labels = _digits()
    index = np.arange(len(labels))
    train_idx, test_idx = train_test_split(
        index, test_size=test_fraction, random_state=0, stratify=labels.numpy()
    )
    chosen = torch.from_numpy(np.sort(train_idx if train else test_idx))
    return ImageSplit(images[chosen], labels[chosen])
