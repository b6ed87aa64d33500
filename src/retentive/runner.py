"""Runs a continual sequence from a composed config: the logic behind `python -m retentive.train`."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from retentive.callbacks.continual import ContinualCallback
from retentive.callbacks.results import ContinualResults
from retentive.data.loaders import make_loader, plain_loader
from retentive.data.stream import TaskStream
from retentive.errors import ConfigError
from retentive.models.continual_net import ContinualNet, build_net
from retentive.module import ContinualModule
from retentive.provenance import git_commit
from retentive.resume.checkpoint import RunCheckpoint, restore
from retentive.resume.rng import restore_rng
from retentive.resume.signals import RunInterrupted, interrupt_on_signals
from retentive.storage.run_dir import check_resumable_config
from retentive.validation import build, check_compatible, head_layout, validate_config

log = logging.getLogger(__name__)


def build_network(cfg: DictConfig, stream: TaskStream) -> ContinualNet:
    """The net for `stream` (heads from the scenario and `model.heads`)."""
    multihead = head_layout(stream.scenario, cfg.model.get("heads", "auto"))
    head_sizes = stream.head_sizes if multihead else [max(stream.head_sizes)]
    return build_net(build(cfg.model.backbone, "model.backbone"), stream.input_shape, head_sizes, multihead,
                     cfg.model.get("init", "default"))


class ContinualRun:
    """Holds the built objects of one run and trains them task after task.

    `resume_state` (a loaded checkpoint) continues a run from where that checkpoint was written.
    """

    def __init__(self, cfg: DictConfig, output_dir: str | Path, resume_state: dict[str, Any] | None = None) -> None:
        validate_config(cfg)
        if resume_state is not None:
            check_resumable_config(OmegaConf.create(resume_state["config"]), cfg)
        L.seed_everything(cfg.seed, workers=True, verbose=False)
        self.cfg = cfg
        self.output_dir = Path(output_dir)
        self.resume_state = resume_state
        self.stream: TaskStream = build(cfg.dataset, "dataset")
        net = build_network(cfg, self.stream)
        self.strategy = build(cfg.strategy, "strategy")
        self.explanation = build(cfg.explanation, "explanation") if cfg.get("explanation") else None
        probes = [*build_group(cfg, "probes"), *build_group(cfg, "drift")]
        extra_callbacks = build_group(cfg, "callbacks")
        check_compatible(self.stream, net, self.strategy, self.explanation, *probes)
        for callback in [*probes, *extra_callbacks]:
            if hasattr(callback, "attach"):  # callbacks that look at the data: probes, drift, diagnostics
                callback.attach(self.stream, self.output_dir)
        self.module = ContinualModule(net, self.strategy, self.stream.num_tasks,
                                      build(cfg.model.optimizer, "model.optimizer"), self.explanation,
                                      reset_optimizer=cfg.schedule.get("reset_optimizer", True))
        if cfg.evaluation.get("task_masked", False):  # a second accuracy matrix, other tasks' units at -inf
            self.module.task_units = self.stream.task_output_units
        self.results = ContinualResults(self.output_dir, self.stream.num_tasks, self.stream.task_names, {
            "name": cfg.get("name"), "seed": cfg.seed, "scenario": self.stream.scenario,
            "dataset": type(self.stream).__name__, "strategy": type(self.strategy).__name__,
            "explanation": type(self.explanation).__name__ if self.explanation else None,
            "commit": git_commit(mark_dirty=True),  # of the latest (re)start
        })
        ckpt = cfg.get("checkpoint") or {}
        self.checkpoint = RunCheckpoint(self.output_dir / "checkpoints", cfg, ckpt.get("every_epoch", True),
                                        ckpt.get("keep_every_task", False))
        callbacks = [self.results, *extra_callbacks, *probes, self.checkpoint]
        self.loggers = build_group(cfg, "logger")
        trainer_kwargs = OmegaConf.to_container(cfg.trainer, resolve=True)
        trainer_kwargs.setdefault("enable_model_summary", False)
        # our loaders shard every global batch over processes themselves (see data/loaders.py)
        trainer_kwargs["use_distributed_sampler"] = False
        self.trainer = L.Trainer(**trainer_kwargs, callbacks=callbacks, logger=self.loggers or False,
                                 enable_progress_bar=any(_is_progress(c) for c in callbacks), max_epochs=0)
        for logger in self.loggers:
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
        sampler = self.strategy.train_sampler(task, dataset, num_samples)
        return make_loader(dataset, self.cfg.loader.batch_size, True, self.cfg.loader.num_workers, num_samples,
                           sampler, seed=self.cfg.seed)

    def _continual_callbacks(self) -> list[ContinualCallback]:
        return [c for c in self.trainer.callbacks if isinstance(c, ContinualCallback)]

    # -- the sequence ---------------------------------------------------------------------
    def _start(self) -> tuple[int, bool]:
        """(first task to work on, whether that task was already started): 0 for a new run, or the
        position of the resume checkpoint, whose state is loaded into the built objects."""
        if self.resume_state is None:
            self.trainer.test(self.module, self._test_loaders, verbose=False)  # random-init reference (FWT)
            self.checkpoint.save_task_end(self.trainer, self.module)  # resumable from the very start
            return 0, False
        restore(self.resume_state, self.trainer, self.module, self.cfg.schedule.get("reset_optimizer", True))
        position = self.resume_state["position"]
        task, started = (position["task"] + 1, False) if position["task_done"] else (position["task"], True)
        log.info("resuming at task %d, epoch %d (global step %d)", task,
                 position["epoch"] - task * self.cfg.schedule.epochs_per_task, position["global_step"])
        return task, started

    def _restore_rng_where_it_was_saved(self, task: int, started: bool) -> None:
        """Epoch-end checkpoints restore at the next epoch's start (see RunCheckpoint); task-end
        ones, and a task whose epochs are all done, restore now."""
        position, rng = self.resume_state["position"], self.resume_state["rng"]
        if started and position["epoch"] < (task + 1) * self.cfg.schedule.epochs_per_task:
            self.checkpoint.rng_to_restore = rng
        else:
            restore_rng(rng)

    def _train_task(self, task: int, already_started: bool, val_loaders: list[DataLoader]) -> None:
        self.module.current_task = task
        if self.cfg.model.get("loss_units", "all") == "seen":  # the classes of tasks 0..task only
            self.module.loss_units = sorted({u for units in self.stream.task_output_units[: task + 1] for u in units})
        train_loader = self._train_loader(task)
        if not already_started:
            self.strategy.on_task_start(self.module.net, task)
            for callback in self._continual_callbacks():
                callback.on_task_start(self.trainer, self.module, task)
        self.trainer.fit_loop.max_epochs = (task + 1) * self.cfg.schedule.epochs_per_task
        if self.trainer.current_epoch < self.trainer.fit_loop.max_epochs:
            self.trainer.fit(self.module, train_loader, val_loaders)
            # a task stopped early (early stopping) gives its unused epochs to nobody: the epoch counter
            # jumps to the task's boundary so the next task trains its own epochs_per_task, no more
            skipped = self.trainer.fit_loop.max_epochs - self.trainer.current_epoch
            if skipped > 0:
                self.trainer.fit_loop.epoch_progress.increment_by(skipped)
        elif self.module.reset_optimizer:  # resumed after the task's last epoch: the next task starts afresh
            self.module.optimizer_state_to_load = None
        self.trainer.test(self.module, self._test_loaders, verbose=False)
        if task < self.stream.num_tasks - 1 or self.cfg.schedule.get("consolidate_last_task", False):
            self.strategy.on_task_end(self.module.net, task, plain_loader(
                self.stream.train(task), self.cfg.loader.batch_size, self.cfg.loader.num_workers))
        for callback in self._continual_callbacks():
            callback.on_task_end(self.trainer, self.module, task)
        self.checkpoint.save_task_end(self.trainer, self.module)
        if self.trainer.is_global_zero:
            log.info("task %d/%d done: %s", task + 1, self.stream.num_tasks, _fmt(self.results.matrix.compute()))

    def fit(self) -> dict[str, Any]:
        """Train every task in turn; R rows from the test split; results and a checkpoint written at
        every epoch end and task end. SIGTERM/SIGINT stop with a named status (RunInterrupted)."""
        val_split = self.cfg.evaluation.split
        if val_split == "val" and any(len(self.stream.val(t)) == 0 for t in range(self.stream.num_tasks)):
            raise ConfigError("dataset.val_fraction", "leaves no validation split for the per-epoch evaluation",
                              "set dataset.val_fraction > 0 or evaluation.split=test")
        val_loaders = self._eval_loaders(val_split, self.cfg.evaluation.get("max_samples_per_task"))
        self._test_loaders = self._eval_loaders("test")
        self.strategy.setup(self.module.net)
        try:
            with interrupt_on_signals():
                first, started = self._start()
                if self.resume_state is not None:
                    self._restore_rng_where_it_was_saved(first, started)
                for task in range(first, self.stream.num_tasks):
                    self._train_task(task, started and task == first, val_loaders)
        except RunInterrupted as interrupted:
            epoch = self.trainer.current_epoch - self.module.current_task * self.cfg.schedule.epochs_per_task
            self.results.status = (f"interrupted at task {self.module.current_task}, epoch {max(epoch, 0)} "
                                   f"({interrupted.signal_name})")
            raise
        except BaseException as error:
            self.results.status = f"failed at task {self.module.current_task}: {error}"
            raise
        finally:
            for callback in self._continual_callbacks():
                callback.on_sequence_end(self.trainer, self.module)
            finalize_loggers(self.loggers, self.results.status)
        return self.results.summary()


def finalize_loggers(loggers: list[Any], status: str) -> None:
    """Flush every logger (Lightning's CSV logger buffers rows until saved) and close W&B runs."""
    outcome = "success" if status == "complete" else "failed"
    for logger in loggers:
        logger.save()
        logger.finalize(outcome)
        if type(logger).__name__ == "WandbLogger":
            import wandb

            if wandb.run is not None:
                wandb.finish(exit_code=0 if outcome == "success" else 1)


def build_group(cfg: DictConfig, key: str) -> list[Any]:
    """Every object of a dict-shaped group (`logger`, `callbacks`, `probes`); null entries skipped."""
    nodes = cfg.get(key) or {}
    for name, node in nodes.items():
        # settings for an entry the chosen group lacks (an experiment tuning callbacks.early_stopping, then
        # callbacks=default on the command line) would reach Lightning as a plain dict
        if node and not (isinstance(node, DictConfig) and "_target_" in node):
            settings = list(node) if isinstance(node, DictConfig) else node
            raise ConfigError(f"{key}.{name}", f"has {settings!r} but no _target_ to build it from",
                              f"choose a {key} group that defines {name} (see conf/{key}/), or drop the settings: "
                              f"~{key}.{name}")
    built = [build(node, key) for node in nodes.values() if node]
    return [obj for obj in built if obj is not None]


def _is_progress(callback: object) -> bool:
    from lightning.pytorch.callbacks import ProgressBar

    return isinstance(callback, ProgressBar)


def _fmt(scores: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.4f}" for k, v in scores.items())


def run(cfg: DictConfig, output_dir: str | Path, resume_state: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build everything from `cfg`, train the sequence, return the summary written to results.json."""
    return ContinualRun(cfg, output_dir, resume_state).fit()


__all__ = ["ConfigError", "ContinualRun", "make_loader", "run"]
