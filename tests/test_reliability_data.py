"""Bad data on disk gives one line naming the file and what is wrong (docs/reliability.md, data rows).

Each faulty folder is a small MNIST made from the first images of the real t10k files (written as idx
files with the right header), with one fault put in; the same case is checked in-process and from the CLI.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from retentive.data.sources import load_mnist
from retentive.errors import ConfigError
from tests.conftest import needs_mnist
from tests.test_cli import train

N = 200  # images per split of the small MNIST


def write_idx(path: Path, array: np.ndarray) -> None:
    """An uncompressed idx file of unsigned bytes: magic 0x0000080<ndim>, big-endian dims, data."""
    header = (0x0800 + array.ndim).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def read_idx(path: Path, count: int) -> np.ndarray:
    raw = path.read_bytes()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    dims[0] = count
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim, count=int(np.prod(dims))).reshape(dims)


def small_mnist(root: Path) -> Path:
    """`root/MNIST/raw` with train and t10k splits of N real t10k images each; returns the raw folder."""
    real = Path(os.environ.get("DATA_DIR", "data")) / "MNIST" / "raw"
    images = read_idx(real / "t10k-images-idx3-ubyte", N)
    labels = read_idx(real / "t10k-labels-idx1-ubyte", N)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix in ("train", "t10k"):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return raw


def truncate(raw: Path) -> None:
    path = raw / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:5000])


def wrong_magic(raw: Path) -> None:  # a labels file where the images file should be
    shutil.copy(raw / "train-labels-idx1-ubyte", raw / "train-images-idx3-ubyte")


def count_mismatch(raw: Path) -> None:  # a labels file of another length (corrupt pair)
    labels = read_idx(raw / "train-labels-idx1-ubyte", N)
    write_idx(raw / "train-labels-idx1-ubyte", labels[: N - 50])


def labels_out_of_range(raw: Path) -> None:
    labels = read_idx(raw / "train-labels-idx1-ubyte", N).copy()
    labels[::5] = 255  # 40 of 200
    write_idx(raw / "train-labels-idx1-ubyte", labels)


def missing_label_file(raw: Path) -> None:
    (raw / "t10k-labels-idx1-ubyte").unlink()


FAULTS: list[tuple[str, Callable[[Path], None], str]] = [
    ("truncated", truncate, f"train-images-idx3-ubyte: truncated: expected {16 + N * 784} bytes for dimensions "
                            f"{N}x28x28, found 5000"),
    ("wrong_magic", wrong_magic, "train-images-idx3-ubyte: wrong magic number 0x00000801 (an idx images file "
                                 "starts with 0x00000803)"),
    ("count_mismatch", count_mismatch, f"train-labels-idx1-ubyte: {N - 50} labels for {N} images"),
    ("labels_out_of_range", labels_out_of_range, f"train-labels-idx1-ubyte: 40 of {N} labels outside 0..9 (e.g. 255)"),
    ("missing_file", missing_label_file, "t10k-labels-idx1-ubyte: missing"),
]


@needs_mnist
def test_small_mnist_is_read_and_labels_match_the_real_file(tmp_path):
    small_mnist(tmp_path)
    split = load_mnist(tmp_path, train=True, download=False)
    assert split.images.shape == (N, 1, 28, 28)
    real = Path(os.environ["DATA_DIR"]) / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    assert split.labels.tolist() == read_idx(real, N).tolist()


@needs_mnist
@pytest.mark.parametrize("name, fault, expected", FAULTS, ids=[f[0] for f in FAULTS])
def test_bad_idx_file_names_the_file_and_the_fault(tmp_path, name, fault, expected):
    fault(small_mnist(tmp_path))
    with pytest.raises(ConfigError) as caught:
        load_mnist(tmp_path, train=True, download=False)
        load_mnist(tmp_path, train=False, download=False)
    message = str(caught.value)
    assert message.startswith("paths.data_dir: ") and expected in message and "\n" not in message


def test_data_dir_that_is_a_file_says_so(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("not a folder")
    with pytest.raises(ConfigError, match=r"paths.data_dir: .*data.txt is a file, not a folder"):
        load_mnist(path, train=True)


def test_really_missing_data_keeps_the_not_found_message(tmp_path):
    with pytest.raises(ConfigError, match=r"MNIST not found in .*MNIST/raw and no download was tried"):
        load_mnist(tmp_path, train=True, download=False)


# the faults of the issue from the CLI (the count mismatch and a missing file share their path to the CLI)
CLI_CASES = [*(case for case in FAULTS if case[0] in ("truncated", "wrong_magic", "labels_out_of_range")),
             ("data_dir_is_a_file", None, "is a file, not a folder")]


@needs_mnist
@pytest.mark.parametrize("name, fault, expected", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_bad_data_exits_2_with_one_error_line(tmp_path, name, fault, expected):
    if fault is None:
        data_dir = tmp_path / "data.txt"
        data_dir.write_text("not a folder")
    else:
        data_dir = tmp_path / "data"
        fault(small_mnist(data_dir))
    logs = tmp_path / "logs"
    done = train("dataset=split_mnist", "logger=none", "callbacks=none", tmp_path=logs,
                 env={"DATA_DIR": str(data_dir), "RETENTIVE_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    error_lines = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1 and expected in error_lines[0], done.stderr[-2000:]
    assert not list(logs.glob("*/*/results.json"))  # nothing trained
