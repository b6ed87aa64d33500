"""Raw image sources: torchvision's own loaders (MNIST, Fashion-MNIST, CIFAR-10/100) and sklearn's digits."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from retentive.data.validate import check_idx_pair, check_labels
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


@dataclass(frozen=True)
class TorchvisionSource:
    """Where torchvision keeps one dataset under its root, and what it is called in messages."""

    label: str        # the dataset's name in messages ("Fashion-MNIST")
    dataset: str      # the torchvision.datasets class
    folder: str       # the folder torchvision reads under the root (what must exist offline)
    num_classes: int
    shared: bool = False  # ../shared/data holds it on the project's offline machines


SOURCES: dict[str, TorchvisionSource] = {
    "mnist": TorchvisionSource("MNIST", "MNIST", "MNIST/raw", 10, shared=True),
    "fashion_mnist": TorchvisionSource("Fashion-MNIST", "FashionMNIST", "FashionMNIST/raw", 10, shared=True),
    "cifar10": TorchvisionSource("CIFAR-10", "CIFAR10", "cifar-10-batches-py", 10),
    "cifar100": TorchvisionSource("CIFAR-100", "CIFAR100", "cifar-100-python", 100),
}


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """`data_dir` if given, else env `DATA_DIR`, else `data/`."""
    return Path(data_dir or os.environ.get("DATA_DIR") or "data").expanduser()


def _online() -> bool:
    return os.environ.get("RETENTIVE_OFFLINE", "0") != "1"


def source_info(source: str) -> TorchvisionSource:
    """The registry entry of `source`; a ConfigError naming the choices otherwise."""
    if source not in SOURCES:
        raise ConfigError("dataset.source", f"unknown source '{source}'", f"choose one of {', '.join(SOURCES)}")
    return SOURCES[source]


def files_present(root: Path, source: str) -> bool:
    """True when torchvision's folder for `source` under `root` holds extracted files (then nothing is
    downloaded; a folder of .gz archives only is left to torchvision, which extracts them offline)."""
    folder = root / source_info(source).folder
    return folder.is_dir() and any(not f.name.endswith(".gz") for f in folder.iterdir())


@lru_cache(maxsize=8)
def _load_cached(source: str, root: str, train: bool, download: bool) -> ImageSplit:
    import torchvision.datasets

    dataset = getattr(torchvision.datasets, SOURCES[source].dataset)(root=root, train=train, download=download)
    data = dataset.data
    if isinstance(data, np.ndarray):  # CIFAR: numpy [N, H, W, C]
        images = torch.from_numpy(data).permute(0, 3, 1, 2).contiguous()
    else:  # MNIST family: uint8 tensor [N, H, W]
        images = data.unsqueeze(1).contiguous()
    return ImageSplit(images, torch.as_tensor(dataset.targets).long())


def load_torchvision(
    source: str, data_dir: str | os.PathLike | None = None, train: bool = True, download: bool = True
) -> ImageSplit:
    """`source` via torchvision: read from `<data_dir>/<folder>` when its files are there (no
    download), else downloaded when online; when neither works, one line naming the folder and the fix.
    Checked once here, before any task is built: idx headers and sizes (MNIST family), labels in range."""
    info = source_info(source)
    root = resolve_data_dir(data_dir).resolve()
    if root.exists() and not root.is_dir():
        raise ConfigError("paths.data_dir", f"{root} is a file, not a folder",
                          f"set DATA_DIR (or paths.data_dir=...) to the folder that holds {info.folder}")
    allowed, present = download and _online(), files_present(root, source)
    prefix = "train" if train else "t10k"
    if present and info.folder.endswith("/raw"):  # MNIST family: headers of all four idx files first
        for split_prefix in ("train", "t10k"):     # (torchvision wants all four for either split)
            check_idx_pair(root / info.folder, split_prefix)
    try:
        split = _load_cached(source, str(root), train, allowed and not present)
    except (RuntimeError, OSError, AssertionError, ValueError, TypeError, IndexError) as error:
        # torchvision: "Dataset not found" / URLError offline / bare asserts of its readers
        folder = root / info.folder
        if present:
            said = (str(error).splitlines() or [type(error).__name__])[0]
            problem = f"{info.label}: {folder} holds files but torchvision could not read them ({said})"
        elif allowed:
            problem = f"{info.label} not found in {folder} and could not be downloaded ({type(error).__name__})"
        else:
            reason = "RETENTIVE_OFFLINE=1" if download else "download=False"
            problem = f"{info.label} not found in {folder} and no download was tried ({reason})"
        example = ", e.g. DATA_DIR=../shared/data" if info.shared else ""
        raise ConfigError(
            "paths.data_dir",
            problem,
            f"set DATA_DIR (or paths.data_dir=...) to a folder holding {info.folder}{example}, "
            "or run once with internet so torchvision downloads it there",
        ) from None
    labels_file = root / info.folder / f"{prefix}-labels-idx1-ubyte" if info.folder.endswith("/raw") else None
    check_labels(split.labels, info.num_classes, labels_file or root / info.folder)
    return split


def load_mnist(data_dir: str | os.PathLike | None = None, train: bool = True, download: bool = True) -> ImageSplit:
    """MNIST via `torchvision.datasets.MNIST` (downloads when it can; one clear line when not)."""
    return load_torchvision("mnist", data_dir, train, download)


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
