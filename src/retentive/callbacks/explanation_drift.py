"""ExplanationDrift: after every task, how far each earlier task's attribution maps moved from the
maps it had right after it was learned (the explanation analogue of the accuracy matrix)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from retentive.callbacks.continual import ContinualCallback  # noqa: E402
from retentive.callbacks.results import ContinualResults  # noqa: E402
from retentive.data.batch import Batch  # noqa: E402
from retentive.data.stream import TaskStream  # noqa: E402
from retentive.errors import ConfigError, require  # noqa: E402
from retentive.loggers import log_image, log_table  # noqa: E402
from retentive.metrics.explanation_drift import SIMILARITIES, ExplanationDriftMatrix  # noqa: E402
from retentive.probes.attribution import AttributionProbe, make_probe  # noqa: E402
from retentive.probes.baselines import normalisation_of  # noqa: E402
from retentive.probes.sample import fixed_sample  # noqa: E402

log = logging.getLogger("retentive")

KEY = "drift.explanation"  # where conf/drift/default.yaml puts this object's options
LABELS = {"spearman": "Spearman rank correlation of |attribution|",
          "topk": "top-{pct:g}% pixel overlap (fraction)"}


def plot_drift_matrix(matrix: list[list[float | None]], task_names: Sequence[str], title: str, label: str,
                      path: Path) -> Path:
    """Heatmap of `D[i][j]`: similarity of task j's maps (columns) after task i (rows) to its own."""
    values = np.array([[np.nan if v is None else v for v in row] for row in matrix], dtype=float)
    fig, ax = plt.subplots(figsize=(1.1 * len(task_names) + 2.5, 0.9 * len(values) + 1.5))
    low = min(0.0, float(np.nanmin(values))) if np.isfinite(values).any() else 0.0
    image = ax.imshow(values, vmin=low, vmax=1, cmap="viridis")
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            if not np.isnan(values[i, j]):
                ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if values[i, j] < low + 0.6 * (1 - low) else "black")
    ax.set_xticks(range(len(task_names)), [f"{j}: {n}" for j, n in enumerate(task_names)], rotation=45, ha="right")
    ax.set_yticks(range(len(values)), [f"after {i}" for i in range(len(values))])
    ax.set_xlabel("explained task (its fixed test sample)")
    ax.set_ylabel("trained up to task")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046).set_label(label, fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


class ExplanationDrift(ContinualCallback):
    """Explains a fixed, seeded test sample of every task with each method (target: the true
    label) after every task, and fills one `ExplanationDriftMatrix` per method. Writes the
    matrices and `drift` / `explanation_forgetting` into results.json, heatmaps to
    `drift/drift_<method>_<similarity>.png`, scalars, tables and images to the loggers. With
    `history`, every validation pass also records each earlier task's similarity to its reference,
    so drift can be read against the per-epoch accuracy curves.
    """

    def __init__(self, methods: Sequence[str] = ("saliency", "integrated_gradients"),
                 similarities: Sequence[str] = ("spearman", "topk"), topk: float = 0.1,
                 samples_per_task: int = 100, seed: int = 0, history: bool = False,
                 output_dir: str | None = None) -> None:
        methods, similarities = list(methods or []), list(similarities or [])
        require(bool(methods) and len(set(methods)) == len(methods), f"{KEY}.methods",
                f"{methods} must be a non-empty list without repeats", "e.g. [saliency, integrated_gradients]")
        require(bool(similarities) and all(s in SIMILARITIES for s in similarities)
                and len(set(similarities)) == len(similarities), f"{KEY}.similarities",
                f"{similarities} must be a non-empty list of {', '.join(SIMILARITIES)}", "e.g. [spearman, topk]")
        require(isinstance(topk, float | int) and not isinstance(topk, bool) and 0 < topk <= 1, f"{KEY}.topk",
                f"{topk!r} must be a fraction of the pixels in (0, 1]", "e.g. 0.1 for the top 10%")
        require(isinstance(samples_per_task, int) and samples_per_task >= 1, f"{KEY}.samples_per_task",
                f"{samples_per_task!r} must be an integer >= 1")
        require(isinstance(seed, int), f"{KEY}.seed", f"{seed!r} must be an integer")
        self.probes: dict[str, AttributionProbe] = {}
        for name in methods:
            try:
                self.probes[name] = make_probe(name)
            except ConfigError as error:  # same problem and fix, under this group's key
                raise ConfigError(f"{KEY}.methods", str(error).removeprefix(f"{error.key}: ")) from None
        self.needs = tuple(sorted({need for probe in self.probes.values() for need in probe.needs}))
        needing = [name for name, probe in self.probes.items() if probe.needs]
        self.config_label = f"drift method {', '.join(needing)}" if needing else type(self).__name__
        self.similarities, self.topk = tuple(similarities), float(topk)
        self.samples_per_task, self.seed, self.record_history = samples_per_task, seed, history
        self.output_dir = output_dir
        self.samples: list[Batch] = []
        self.task_names: list[str] = []
        self.metrics: dict[str, ExplanationDriftMatrix] = {}
        self.history: list[dict[str, Any]] = []
        self.seconds = 0.0  # wall time of this callback's work (attributions, similarities, plots)

    # -- wiring -------------------------------------------------------------------------------
    def attach(self, stream: TaskStream, output_dir: str | Path) -> None:
        """The runner hands over the stream (the samples are drawn once) and the run dir."""
        self.samples = [fixed_sample(stream.test(t), self.samples_per_task, self.seed) for t in range(stream.num_tasks)]
        for probe in self.probes.values():  # probes whose baselines live in pixel space (e.g. black)
            if hasattr(probe, "pixel_mean"):
                probe.pixel_mean, probe.pixel_std = normalisation_of(stream.test(0))
        self.task_names = list(stream.task_names)
        self.output_dir = self.output_dir or str(output_dir)
        self.metrics = {name: ExplanationDriftMatrix(stream.num_tasks, self.similarities, self.topk)
                        for name in self.probes}

    def check_model(self, net: torch.nn.Module) -> None:
        """Each probe's own check of the model (e.g. a GradCAM layer that must exist), before training."""
        for probe in self.probes.values():
            if hasattr(probe, "check"):
                probe.check(net)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        results = next((cb for cb in trainer.callbacks if isinstance(cb, ContinualResults)), None)
        if results is not None:
            results.add_section("explanation_drift", self.section)

    # -- measuring ----------------------------------------------------------------------------
    def _maps(self, module: L.LightningModule, tasks: range) -> dict[str, list[Tensor]]:
        """Per method, the maps of each task's sample (true-label target), on the CPU."""
        net = module.net
        was_training = net.training
        net.eval()
        maps: dict[str, list[Tensor]] = {name: [] for name in self.probes}
        # validation runs under inference mode; attributions need gradients
        with torch.inference_mode(False), torch.enable_grad():
            for task in tasks:
                batch = self.samples[task].to(module.device)
                for name, probe in self.probes.items():
                    maps[name].append(probe.attribute(net, batch.x, batch.t, batch.y).detach().cpu())
        net.train(was_training)
        return maps

    def on_task_end(self, trainer: L.Trainer, module: L.LightningModule, task: int) -> None:
        if not self.samples or not trainer.is_global_zero:
            return
        start = time.perf_counter()
        maps = self._maps(module, range(task + 1))
        for name, metric in self.metrics.items():
            metric.update(task, maps[name])
        self._report(trainer, task)
        self.seconds += time.perf_counter() - start
        results = next((cb for cb in trainer.callbacks if isinstance(cb, ContinualResults)), None)
        if results is not None:  # it wrote results.json before this hook ran
            results.write()

    def on_test_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        """The runner's random-init test pass (task -1): keep every task's maps for the chance level."""
        if not self.samples or getattr(module, "current_task", 0) >= 0 or not trainer.is_global_zero:
            return
        start = time.perf_counter()
        maps = self._maps(module, range(len(self.samples)))
        for name, metric in self.metrics.items():
            metric.set_initial(maps[name])
        self.seconds += time.perf_counter() - start

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not self.record_history or not self.samples or trainer.sanity_checking or not trainer.is_global_zero:
            return
        done = min(getattr(module, "current_task", 0), *(len(m.references) for m in self.metrics.values()))
        if done <= 0:
            return
        start = time.perf_counter()
        maps = self._maps(module, range(done))
        values = {}
        for name, metric in self.metrics.items():
            for j in range(done):
                for similarity, value in zip(self.similarities, metric.similarity(j, maps[name][j]).tolist(),
                                             strict=True):
                    self.history.append({"trained_task": module.current_task, "epoch": trainer.current_epoch,
                                         "step": trainer.global_step, "method": name, "similarity": similarity,
                                         "eval_task": j, "value": value})
                    values[f"drift_curve/{name}/{similarity}/task{j}"] = value
        self.seconds += time.perf_counter() - start
        for logger in trainer.loggers:
            logger.log_metrics(values, step=trainer.global_step)

    # -- output -------------------------------------------------------------------------------
    @property
    def primary(self) -> tuple[str, str]:
        """The (method, similarity) whose scores are results.json's top-level `drift` numbers."""
        return next(iter(self.probes)), self.similarities[0]

    def section(self) -> dict[str, Any]:
        """This callback's part of results.json (merged at its top level)."""
        scores = {name: metric.compute() for name, metric in self.metrics.items()} if self._filled() else {}
        method, similarity = self.primary
        out: dict[str, Any] = {"explanation_drift": {
            "methods": list(self.probes), "similarities": list(self.similarities), "topk": self.topk,
            "samples_per_task": self.samples_per_task, "seed": self.seed, "target": "true label",
            "primary": {"method": method, "similarity": similarity},
            "matrices": {name: metric.as_lists() for name, metric in self.metrics.items()},
            "random_init_similarity": {name: metric.random_init_lists() for name, metric in self.metrics.items()},
            "scores": scores, "history": self.history, "seconds": round(self.seconds, 2),
        }}
        out.update(scores.get(method, {}).get(similarity, {}))
        return out

    def _filled(self) -> bool:
        return any(metric.rows_filled for metric in self.metrics.values())

    def _title(self, name: str, similarity: str, label: str, floor: list[float | None]) -> str:
        known = [b for b in floor if b is not None]
        chance = f"; random-init net: {sum(known) / len(known):.2f}" if known else ""
        return f"Explanation drift D: {name}, {label}\n(mean over {self.samples_per_task} test images per task{chance})"

    def _report(self, trainer: L.Trainer, task: int) -> None:
        scalars: dict[str, float] = {}
        columns = ["after task", *[f"task {j}" for j in range(len(self.samples))]]
        for name, metric in self.metrics.items():
            scores, lists = metric.compute(), metric.as_lists()
            for similarity in self.similarities:
                row = lists[similarity][task]
                scalars.update({f"drift/{name}/{similarity}/task{j}": row[j] for j in range(task)})
                scalars.update({f"drift/{name}/{similarity}/{k}": v for k, v in scores[similarity].items()})
                floor = metric.random_init_lists()[similarity]
                if floor[task] is not None:
                    scalars[f"drift/{name}/{similarity}/random_init_task{task}"] = floor[task]
                log_table(trainer, f"drift_matrix/{name}/{similarity}", columns,
                          [[i, *r] for i, r in enumerate(lists[similarity])], trainer.global_step)
        # a heatmap costs about as much as a method's attributions: the primary one after every
        # task, all of them after the last task (or when the run stops early, on_sequence_end)
        self._draw(trainer, None if task == len(self.samples) - 1 else [self.primary])
        method, similarity = self.primary
        primary = self.metrics[method].compute()[similarity]
        scalars.update({f"cl/{k}": v for k, v in primary.items()})
        for logger in trainer.loggers:
            logger.log_metrics(scalars, step=trainer.global_step)
        if primary:
            log.info("task %d explanation drift (%s, %s): %s", task, method, similarity,
                     ", ".join(f"{k}={v:.4f}" for k, v in primary.items()))

    def _draw(self, trainer: L.Trainer, pairs: list[tuple[str, str]] | None = None) -> None:
        """`drift/drift_<method>_<similarity>.png` for `pairs` (all if None), also sent to the loggers."""
        for name, metric in self.metrics.items():
            lists = metric.as_lists()
            for similarity in self.similarities:
                if pairs is not None and (name, similarity) not in pairs:
                    continue
                label = LABELS[similarity].format(pct=100 * self.topk)
                title = self._title(name, similarity, label, metric.random_init_lists()[similarity])
                path = plot_drift_matrix(lists[similarity], self.task_names, title, label,
                                         Path(self.output_dir) / "drift" / f"drift_{name}_{similarity}.png")
                log_image(trainer, f"drift/{name}/{similarity}", path, trainer.global_step)

    def on_sequence_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        rows = max((metric.rows_filled for metric in self.metrics.values()), default=0)
        if trainer.is_global_zero and 0 < rows < len(self.samples):  # stopped early: draw every matrix so far
            self._draw(trainer)

    # -- resume -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The reference maps and matrices of every method, and the history (tensors and plain values)."""
        if not any(metric.rows_filled or metric.initial for metric in self.metrics.values()):
            return {}
        return {"metrics": {name: dict(metric.state_dict()) for name, metric in self.metrics.items()},
                "history": self.history, "seconds": self.seconds}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, metric_state in state.get("metrics", {}).items():
            if name in self.metrics:
                self.metrics[name].load_state_dict(metric_state)
        self.history = list(state.get("history", []))
        self.seconds = state.get("seconds", 0.0)
