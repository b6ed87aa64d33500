"""What resumability costs: time spent writing checkpoints at every epoch end vs the run's time.

Split MNIST (Task-IL, EWC with the exact Fisher, 2x400 MLP, Adam, batch 128, `--epochs` per task),
one run: `RunCheckpoint` times its own writes (state gathering, torch.save to a temp file, fsync,
rename), reported against the run's wall time. Target: <= 5 %. A second run with only task-end
checkpoints (`checkpoint.every_epoch=false`) is timed in the same process for comparison.
Usage: DATA_DIR=../shared/data OMP_NUM_THREADS=1 python bench/checkpoint_cost.py
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from retentive.config import compose_config
from retentive.runner import ContinualRun


def one_run(every_epoch: bool, epochs: int, out: Path) -> tuple[float, float, int]:
    """(run seconds, checkpoint-writing seconds, checkpoint bytes)."""
    cfg = compose_config(["dataset=split_mnist", "dataset.scenario=task", "strategy=ewc", "logger=none",
                          "callbacks=none", f"schedule.epochs_per_task={epochs}",
                          f"checkpoint.every_epoch={str(every_epoch).lower()}"], out)
    run = ContinualRun(cfg, out)
    start = time.perf_counter()
    run.fit()
    seconds = time.perf_counter() - start
    return seconds, run.checkpoint.seconds, run.checkpoint.last.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        every, writes, size = one_run(True, args.epochs, Path(tmp) / "every_epoch")
        task_end, task_writes, _ = one_run(False, args.epochs, Path(tmp) / "task_end")
    print(f"checkpoint size: {size / 2**20:.1f} MiB (net + Adam + EWC importances and anchors + results + RNG)")
    print(f"every epoch: run {every:.2f} s, writing checkpoints {writes:.3f} s = {100 * writes / every:.2f} % "
          f"of the run (target <= 5 %)")
    print(f"task ends only: run {task_end:.2f} s, writing {task_writes:.3f} s = {100 * task_writes / task_end:.2f} %")
    print(f"wall-time ratio every-epoch / task-end-only runs: {every / task_end:.3f}")


if __name__ == "__main__":
    main()
