"""AttributionProbes: after every task, explain a few test images of every task with Captum."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import lightning as L
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from retentive.callbacks.continual import ContinualCallback  # noqa: E402
from retentive.data.stream import TaskStream  # noqa: E402
from retentive.data.task_dataset import TaskDataset  # noqa: E402
from retentive.probes.attribution import AttributionProbe, make_probe  # noqa: E402


def mask_share(maps: Tensor, masks: Tensor) -> float:
    """Fraction of absolute attribution that falls inside the masked (spurious) region."""
    weights = maps.abs()
    inside = (weights * (masks.sum(dim=1, keepdim=True) > 0)).sum()
    return float(inside / weights.sum().clamp_min(1e-12))


class AttributionProbes(ContinualCallback):
    """Writes `probes/after_task<i>.png` (inputs and one attribution map per method) and logs, for
    datasets with masks, `probe/<method>/mask_share/task<j>`: how much attribution the model puts on
    the region it should not use. Images are the first `samples_per_task` test images of each task.
    """

    def __init__(self, methods: Sequence[str] = ("saliency", "integrated_gradients", "occlusion"),
                 samples_per_task: int = 4, output_dir: str | None = None) -> None:
        self.probes: list[AttributionProbe] = [make_probe(m) for m in methods]
        self.samples_per_task = samples_per_task
        self.output_dir = output_dir
        self.test_sets: list[TaskDataset] = []
        self.needs = tuple({need for probe in self.probes for need in probe.needs})

    def attach(self, stream: TaskStream, output_dir: str | Path) -> None:
        """The runner hands over the task stream and the run dir."""
        self.test_sets = [stream.test(t) for t in range(stream.num_tasks)]
        self.output_dir = self.output_dir or str(output_dir)

    def on_task_end(self, trainer: L.Trainer, module: L.LightningModule, task: int) -> None:
        if not self.test_sets or not trainer.is_global_zero:
            return
        net = module.net
        was_training = net.training
        net.eval()
        columns: list[tuple[str, Tensor]] = []
        inputs, metrics = [], {}
        for j, dataset in enumerate(self.test_sets):
            batch = dataset.batch(range(min(self.samples_per_task, len(dataset))))
            x, t = batch.x.to(module.device), batch.t.to(module.device)
            inputs.append(x)
            for probe in self.probes:
                maps = probe.attribute(net, x, t).cpu()
                columns.append((f"{probe.name}", maps))
                if batch.mask is not None:
                    metrics[f"probe/{probe.name}/mask_share/task{j}"] = mask_share(maps, batch.mask)
        net.train(was_training)
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)
        self._plot(task, torch.cat(inputs).cpu(), columns)

    def _plot(self, task: int, inputs: Tensor, columns: list[tuple[str, Tensor]]) -> None:
        names = [p.name for p in self.probes]
        maps = {name: torch.cat([m for n, m in columns if n == name]) for name in names}
        rows = len(inputs)
        fig, axes = plt.subplots(rows, 1 + len(names), figsize=(1.6 * (1 + len(names)), 1.6 * rows), squeeze=False)
        for i in range(rows):
            image = inputs[i]
            image = (image - image.min()) / (image.max() - image.min() + 1e-12)
            axes[i, 0].imshow(image.permute(1, 2, 0).squeeze(-1), cmap="gray")
            for k, name in enumerate(names):
                axes[i, k + 1].imshow(maps[name][i, 0], cmap="bwr",
                                      vmin=-maps[name][i].abs().max(), vmax=maps[name][i].abs().max())
        for k, title in enumerate(["input", *names]):
            axes[0, k].set_title(title, fontsize=8)
        for ax in axes.flat:
            ax.axis("off")
        fig.suptitle(f"Attributions after task {task} (predicted class)", fontsize=9)
        fig.tight_layout()
        path = Path(self.output_dir) / "probes"
        path.mkdir(parents=True, exist_ok=True)
        fig.savefig(path / f"after_task{task}.png", dpi=100)
        plt.close(fig)
