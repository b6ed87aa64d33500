"""EmbeddingProjector: the penultimate-layer features of every seen task after each task.

The same seeded sample of each task (`fixed_sample`) is embedded after every task, so the
projector steps and the t-SNE figures show how one set of images moves in feature space as later
tasks are learned (representation drift, classes of old tasks collapsing into new ones).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from sklearn.manifold import TSNE
from torch import Tensor

from retentive.callbacks.continual import ContinualCallback
from retentive.data.batch import Batch
from retentive.data.stream import TaskStream
from retentive.data.task_dataset import TaskDataset
from retentive.diagnostics.figures import save_figure, tsne_figure
from retentive.diagnostics.timing import report_seconds
from retentive.errors import require
from retentive.loggers import log_embedding, log_image
from retentive.models.continual_net import ContinualNet
from retentive.probes.sample import fixed_sample

KEY = "callbacks.embeddings"


def embed(net: ContinualNet, batch: Batch, device: torch.device, batch_size: int = 1024) -> Tensor:
    """`net.features` of the batch, flattened to one vector per sample, in eval mode, on the CPU."""
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            parts = [net.features(batch.x[i : i + batch_size].to(device)).flatten(1).cpu()
                     for i in range(0, len(batch), batch_size)]
    finally:
        net.train(was_training)
    return torch.cat(parts)


def tsne_2d(features: Tensor, perplexity: float, max_iter: int, seed: int) -> tuple[np.ndarray, float]:
    """2-D t-SNE of the features (perplexity capped below the sample count, as t-SNE requires);
    returns the points and the perplexity used."""
    used = float(min(perplexity, max(1.0, (len(features) - 1) / 3)))
    tsne = TSNE(n_components=2, perplexity=used, max_iter=max_iter, init="pca", learning_rate="auto",
                random_state=seed, n_jobs=1)
    return tsne.fit_transform(features.double().numpy()), used


def sprite_images(x: Tensor) -> Tensor:
    """Inputs rescaled to [0, 1] per image (the projector's sprite wants NCHW in [0, 1])."""
    flat = x.flatten(1)
    low, high = flat.min(dim=1).values, flat.max(dim=1).values
    scaled = (flat - low[:, None]) / (high - low).clamp_min(1e-12)[:, None]
    return scaled.view_as(x)


class EmbeddingProjector(ContinualCallback):
    """After every task: TensorBoard projector `penultimate` (metadata: label, task, task
    name; sprite: the inputs) and `diagnostics/tsne_after_task<k>.png` (also logged as image
    `diagnostics/tsne`), on `samples_per_task` fixed samples of each seen task's `split`."""

    def __init__(self, samples_per_task: int = 50, split: str = "test", seed: int = 0, projector: bool = True,
                 images: bool = True, tsne: bool = True, perplexity: float = 30.0, max_iter: int = 500,
                 log_images: bool = True, output_dir: str | None = None) -> None:
        require(isinstance(samples_per_task, int) and samples_per_task >= 2, f"{KEY}.samples_per_task",
                f"{samples_per_task!r} is too few to embed", "use at least 2, e.g. 100")
        require(split in ("val", "test"), f"{KEY}.split", f"'{split}' is not a split", "use val or test")
        require(perplexity > 0, f"{KEY}.perplexity", f"{perplexity} is not positive", "t-SNE's usual is 5 to 50")
        require(isinstance(max_iter, int) and max_iter >= 250, f"{KEY}.max_iter", f"{max_iter!r} is below 250",
                "scikit-learn's t-SNE needs at least 250 iterations")
        self.samples_per_task = samples_per_task
        self.split = split
        self.seed = seed
        self.projector = projector
        self.images = images
        self.tsne = tsne
        self.perplexity = perplexity
        self.max_iter = max_iter
        self.log_images = log_images
        self.output_dir = Path(output_dir) if output_dir else None
        self.datasets: list[TaskDataset] = []
        self.task_names: list[str] = []
        self.seconds = 0.0

    def attach(self, stream: TaskStream, output_dir: str | Path) -> None:
        """The runner hands over the task stream and the run dir."""
        self.datasets = [getattr(stream, self.split)(t) for t in range(stream.num_tasks)]
        self.task_names = stream.task_names
        self.output_dir = (self.output_dir or Path(output_dir)) / "diagnostics"

    def setup(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        report_seconds(trainer, "embedding", lambda: self.seconds)

    def sample(self, seen_tasks: int) -> Batch:
        """The fixed sample of tasks 0..seen_tasks-1 (the same images after every task)."""
        return Batch.cat([fixed_sample(d, self.samples_per_task, self.seed) for d in self.datasets[:seen_tasks]])

    def on_task_end(self, trainer: L.Trainer, module: L.LightningModule, task: int) -> None:
        if not self.datasets or not trainer.is_global_zero or not (self.projector or self.tsne):
            return
        start = time.perf_counter()
        batch = self.sample(task + 1)
        features = embed(module.net, batch, module.device)
        labels, tasks = batch.y.tolist(), batch.t.tolist()
        step = trainer.global_step
        if self.projector:
            log_embedding(trainer, "penultimate", features,
                          [[y, t, self.task_names[t]] for y, t in zip(labels, tasks, strict=True)],
                          ["label", "task", "task_name"], sprite_images(batch.x) if self.images else None, step)
        if self.tsne:
            points, used = tsne_2d(features, self.perplexity, self.max_iter, self.seed)
            title = (f"t-SNE of penultimate features after task {task} ({self.split} split, "
                     f"{self.samples_per_task} per task, perplexity {used:g})\ncolour: label, marker: task")
            path = save_figure(tsne_figure(points, np.asarray(labels), np.asarray(tasks), self.task_names, title),
                               self.output_dir / f"tsne_after_task{task}.png")
            if self.log_images:
                log_image(trainer, "diagnostics/tsne", path, step)
        self.seconds += time.perf_counter() - start

    def state_dict(self) -> dict[str, Any]:
        return {"seconds": self.seconds} if self.seconds else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.seconds = state.get("seconds", 0.0)
