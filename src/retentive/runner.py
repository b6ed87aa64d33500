"""Runs a continual sequence from a composed config: the logic behind `python -m retentive.train`."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, RandomSampler

from retentive.callbacks.continual import ContinualCallback
from retentive.callbacks.results import ContinualResults
from retentive.data.stream import TaskStream
from retentive.data.task_dataset import TaskDataset, collate_batch
from retentive.errors import ConfigError
from retentive.models.continual_net import build_net
from retentive.module import ContinualModule
from retentive.validation import build, check_compatible, head_layout, validate_config

log = logging.getLogger(__name__)


def make_loader(dataset: TaskDataset, batch_size: int, shuffle: bool, num_workers: int = 0,
                num_samples: int | None = None) -> DataLoader:
    """Batched-fetch loader; `num_samples` fixes the epoch length (iteration-based protocols)."""
    sampler = RandomSampler(dataset, num_samples=num_samples) if (shuffle or num_samples) else None
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      collate_fn=collate_batch, persistent_workers=num_workers > 0)


class ContinualRun:
    """Holds the built objects of one run and trains them task after task."""

    def __init__(self, cfg: DictConfig, output_dir: str | Path) -> None:
        validate_config(cfg)
        L.seed_everything(cfg.seed, workers=True, verbose=False)
        self.cfg = cfg
        self.output_dir = Path(output_dir)
        self.stream: TaskStream = build(cfg.dataset, "dataset")
        multihead = head_layout(self.stream.scenario, cfg.model.get("heads", "auto"))
        head_sizes = self.stream.head_sizes if multihead else [max(self.stream.head_sizes)]
        net = build_net(build(cfg.model.backbone, "model.backbone"), self.stream.input_shape, head_sizes, multihead)
        self.strategy = build(cfg.strategy, "strategy")
        self.explanation = build(cfg.explanation, "explanation") if cfg.get("explanation") else None
        probes = build_group(cfg, "probes")
        check_compatible(self.stream, net, self.strategy, self.explanation, *probes)
        for probe in probes:
            probe.attach([self.stream.test(t) for t in range(self.stream.num_tasks)], self.output_dir)
        self.module = ContinualModule(net, self.strategy, self.stream.num_tasks,
                                      build(cfg.model.optimizer, "model.optimizer"), self.explanation,
                                      reset_optimizer=cfg.schedule.get("reset_optimizer", True))
        self.results = ContinualResults(self.output_dir, self.stream.num_tasks, self.stream.task_names, {
            "name": cfg.get("name"), "seed": cfg.seed, "scenario": self.stream.scenario,
            "dataset": type(self.stream).__name__, "strategy": type(self.strategy).__name__,
            "explanation": type(self.explanation).__name__ if self.explanation else None,
        })
        callbacks = [self.results, *build_group(cfg, "callbacks"), *probes]
        loggers = build_group(cfg, "logger")
        trainer_kwargs = OmegaConf.to_container(cfg.trainer, resolve=True)
        trainer_kwargs.setdefault("enable_model_summary", False)
        self.trainer = L.Trainer(**trainer_kwargs, callbacks=callbacks, logger=loggers or False,
                                 enable_progress_bar=any(_is_progress(c) for c in callbacks), max_epochs=0)
        for logger in loggers:
            logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    # -- loaders --------------------------------------------------------------------------
    def _eval_loaders(self, split: str, limit: int | None = None) -> list[DataLoader]:
        datasets = [getattr(self.stream, split)(t) for t in range(self.stream.num_tasks)]
        if limit:  # the val split is stored in random order, so its head is a random subset
            datasets = [d.subset(torch.arange(min(limit, len(d)))) for d in datasets]
        return [make_loader(d, self.cfg.loader.eval_batch_size, False, self.cfg.loader.num_workers) for d in datasets]

    def _train_loader(self, task: int) -> DataLoader:
        dataset = self.strategy.train_dataset(task, self.stream)
        steps, epochs = self.cfg.schedule.steps_per_task, self.cfg.schedule.epochs_per_task
        num_samples = None
        if steps:  # iteration-based protocol: `epochs` evaluation points per task
            num_samples = math.ceil(steps / epochs) * self.cfg.loader.batch_size
        return make_loader(dataset, self.cfg.loader.batch_size, True, self.cfg.loader.num_workers, num_samples)

    def _continual_callbacks(self) -> list[ContinualCallback]:
        return [c for c in self.trainer.callbacks if isinstance(c, ContinualCallback)]

    # -- the sequence ---------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        """Train every task in turn; R rows from the test split; results written at each task end."""
        val_split = self.cfg.evaluation.split
        if val_split == "val" and any(len(self.stream.val(t)) == 0 for t in range(self.stream.num_tasks)):
            raise ConfigError("dataset.val_fraction", "leaves no validation split for the per-epoch evaluation",
                              "set dataset.val_fraction > 0 or evaluation.split=test")
        val_loaders = self._eval_loaders(val_split, self.cfg.evaluation.get("max_samples_per_task"))
        test_loaders = self._eval_loaders("test")
        self.strategy.setup(self.module)
        try:
            self.trainer.test(self.module, test_loaders, verbose=False)  # random-init reference (FWT)
            for task in range(self.stream.num_tasks):
                self.module.current_task = task
                train_loader = self._train_loader(task)
                self.strategy.on_task_start(self.module, task)
                for callback in self._continual_callbacks():
                    callback.on_task_start(self.trainer, self.module, task)
                self.trainer.fit_loop.max_epochs = (task + 1) * self.cfg.schedule.epochs_per_task
                self.trainer.fit(self.module, train_loader, val_loaders)
                if self.trainer.interrupted:
                    raise KeyboardInterrupt
                self.trainer.test(self.module, test_loaders, verbose=False)
                self.strategy.on_task_end(self.module, task, make_loader(
                    self.stream.train(task), self.cfg.loader.batch_size, False, self.cfg.loader.num_workers))
                for callback in self._continual_callbacks():
                    callback.on_task_end(self.trainer, self.module, task)
                if self.trainer.is_global_zero:
                    log.info("task %d/%d done: %s", task + 1, self.stream.num_tasks,
                             _fmt(self.results.matrix.compute()))
        except BaseException as error:
            self.results.status = f"failed at task {self.module.current_task}: {error}"
            raise
        finally:
            for callback in self._continual_callbacks():
                callback.on_sequence_end(self.trainer, self.module)
        return self.results.summary()


def build_group(cfg: DictConfig, key: str) -> list[Any]:
    """Every object of a dict-shaped group (`logger`, `callbacks`, `probes`); null entries skipped."""
    built = [build(node, key) for node in (cfg.get(key) or {}).values() if node]
    return [obj for obj in built if obj is not None]


def _is_progress(callback: object) -> bool:
    from lightning.pytorch.callbacks import ProgressBar

    return isinstance(callback, ProgressBar)


def _fmt(scores: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.4f}" for k, v in scores.items())


def run(cfg: DictConfig, output_dir: str | Path) -> dict[str, Any]:
    """Build everything from `cfg`, train the sequence, return the summary written to results.json."""
    return ContinualRun(cfg, output_dir).fit()


__all__ = ["ConfigError", "ContinualRun", "make_loader", "run"]
