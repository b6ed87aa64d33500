"""Shared fixtures: real MNIST from DATA_DIR (CI exports it), configs composed like the CLI does."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from retentive.config import compose_config
from retentive.runner import run

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("WANDB_MODE", "offline")
if "DATA_DIR" not in os.environ and (ROOT.parent / "shared" / "data" / "MNIST").exists():
    os.environ["DATA_DIR"] = str(ROOT.parent / "shared" / "data")


# Small models: one intra-op thread is as fast and does not thrash when the machine is busy.
torch.set_num_threads(1)


def mnist_available() -> bool:
    raw = Path(os.environ.get("DATA_DIR", "data")) / "MNIST" / "raw"
    return (raw / "train-images-idx3-ubyte").exists() or (raw / "train-images-idx3-ubyte.gz").exists()


needs_mnist = pytest.mark.skipif(not mnist_available(), reason="real MNIST not found: export DATA_DIR")

QUIET = ["logger=none", "callbacks=none"]


@pytest.fixture
def run_config(tmp_path):
    """Run a continual sequence from CLI-style overrides; returns (summary, output dir)."""

    def _run(*overrides: str, quiet: bool = True):
        cfg = compose_config([*(QUIET if quiet else []), *overrides], tmp_path)
        return run(cfg, tmp_path), tmp_path

    return _run


def start_task(strategy, stream, net, task: int):
    """`strategy` as the runner leaves it at the start of `task`: every earlier task started and
    ended on its whole training split, then `task` started."""
    strategy.setup(net)
    for done in range(task):
        strategy.on_task_start(net, done)
        strategy.on_task_end(net, done, [stream.train(done).batch()])
    strategy.on_task_start(net, task)
    return strategy
