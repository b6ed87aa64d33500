"""Cost per training step of each rehearsal / distillation method vs naive fine-tuning.

Split MNIST Class-IL, 2x400 MLP (`--model cnn` for the LeNet-style CNN), Adam, batch 128: each
method trains task 0 and then `--steps` steps of task 1 (buffers and teachers are full by then);
only task 1's training steps are timed (a callback around the training epoch; no evaluation
inside). Methods are run alternately, `--repeats` rounds, best time per method. Targets (issue:
methods): ER/DER/DER++ <= 2.2x naive, saliency replay <= 3.5x.
Usage: DATA_DIR=../shared/data OMP_NUM_THREADS=1 python bench/rehearsal_cost.py
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import lightning as L
import torch

from retentive.config import CONF_DIR, compose_config
from retentive.errors import ConfigError
from retentive.runner import ContinualRun

METHODS = ["naive", "er", "der", "derpp", "agem", "lwf", "icarl", "saliency_replay", "attention_distillation"]


class TaskOneTimer(L.Callback):
    def __init__(self) -> None:
        self.seconds = 0.0
        self.steps = 0
        self._start = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._start = time.perf_counter()
        self._first_step = trainer.global_step

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if module.current_task == 1:
            self.seconds += time.perf_counter() - self._start
            self.steps += trainer.global_step - self._first_step


def time_method(method: str, steps: int, model: str, out: Path) -> float:
    """Seconds per training step of task 1."""
    cfg = compose_config(["dataset=split_mnist", "dataset.scenario=class", "dataset.class_groups=[[0,1],[2,3]]",
                          f"model={model}", f"strategy={method}", "logger=none", "callbacks=none",
                          f"schedule.steps_per_task={steps}", "evaluation.split=test", "trainer.val_check_interval=1.0",
                          "+trainer.limit_val_batches=0", "checkpoint.every_epoch=false"], out)
    run = ContinualRun(cfg, out)
    timer = TaskOneTimer()
    run.trainer.callbacks.append(timer)
    run.fit()
    return timer.seconds / max(timer.steps, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--model", default="mlp")
    parser.add_argument("--methods", nargs="*", default=METHODS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    methods = [m for m in args.methods if (CONF_DIR / "strategy" / f"{m}.yaml").exists()]
    best: dict[str, float] = {}
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.repeats):
            for method in methods:
                try:
                    seconds = time_method(method, args.steps, args.model, Path(tmp) / f"{method}-{round_}")
                except ConfigError as error:  # e.g. a GradCAM-based method on the MLP
                    skipped[method] = str(error)
                    continue
                best[method] = min(best.get(method, float("inf")), seconds)
    print(f"| method | ms / step ({args.model}, batch 128) | ratio to naive |")
    print("|---|---|---|")
    for method in methods:
        if method in best:
            print(f"| {method} | {1000 * best[method]:.2f} | {best[method] / best['naive']:.2f}x |")
        else:
            print(f"| {method} | n/a: {skipped[method]} | |")


if __name__ == "__main__":
    main()
