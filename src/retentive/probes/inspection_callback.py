"""ModelInspection: after every task, a conv layer's kernels (and their change since the last task)
and activation maximisation per filter and per class, in `probes/inspection/after_task<k>.png`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning as L
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import Tensor, nn  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402

from retentive.callbacks.continual import ContinualCallback  # noqa: E402
from retentive.callbacks.results import ContinualResults  # noqa: E402
from retentive.data.stream import TaskStream  # noqa: E402
from retentive.errors import require  # noqa: E402
from retentive.loggers import log_image  # noqa: E402
from retentive.probes.attribution import conv_at  # noqa: E402
from retentive.probes.baselines import normalisation_of  # noqa: E402
from retentive.probes.inspection import (  # noqa: E402
    AscentOptions,
    ascend,
    class_objective,
    class_targets,
    filter_objective,
    kernels,
)

PER_ROW = 10


def _grid(images: Tensor, per_row: int, pad_value: float) -> Tensor:
    """`[B, C, H, W]` -> one `[C', H', W']` tiling (torchvision's make_grid), one pixel apart."""
    grid = make_grid(images, nrow=per_row, padding=1, pad_value=pad_value)
    return grid[:1] if images.shape[1] == 1 else grid


def _section(fig, ax, grid: Tensor, title: str, bar_label: str, signed: bool) -> None:
    if signed:
        scale = float(torch.nan_to_num(grid).abs().max()) or 1.0
        image = ax.imshow(grid[0].numpy(), cmap="bwr", vmin=-scale, vmax=scale, interpolation="nearest")
    elif grid.shape[0] == 1:
        image = ax.imshow(grid[0].numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        image = ax.imshow(grid.permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
    if not signed and grid.shape[0] != 1:
        bar_label = ""  # an RGB image has no single colour scale
    if bar_label:
        bar = fig.colorbar(image, cax=ax.inset_axes([1.01, 0.0, 0.015, 1.0]))
        bar.set_label(bar_label, fontsize=7)
        bar.ax.tick_params(labelsize=6)
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def _enlarge(kernels: Tensor, size: int) -> Tensor:
    """`[F, 1, k, k]` kernels repeated (nearest) to about `size` pixels, so every panel's cells match."""
    factor = max(1, size // kernels.shape[-1])
    return kernels.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)


def draw_inspection(path: Path, task: int, layer: str, sections: list[tuple[str, Tensor, str, bool, int]],
                    class_labels: list[str] | None, dpi: int = 80) -> Path:
    """One panel per section (title, images `[B, C, H, W]`, colour-bar label, signed, cells per row);
    rows of 10 cells are 7 inches wide."""
    rows = [-(-len(images) // per_row) for _, images, _, _, per_row in sections]
    cell = 7.0 / PER_ROW  # inches
    height = sum(rows) * cell + 0.55 * len(sections) + 0.5
    fig, axes = plt.subplots(len(sections), 1, figsize=(8.5, height), squeeze=False,
                             gridspec_kw={"height_ratios": rows})
    for ax, (title, images, bar_label, signed, per_row) in zip(axes[:, 0], sections, strict=True):
        _section(fig, ax, _grid(images, per_row, float("nan") if signed else 1.0), title, bar_label, signed)
    if class_labels:  # the class panel: each column's class under it
        ax, images, per_row = axes[-1, 0], sections[-1][1], sections[-1][4]
        step = images.shape[-1] + 1
        ax.set_xticks([1 + step * c + images.shape[-1] / 2 for c in range(len(class_labels))], class_labels,
                      fontsize=7)
    fig.suptitle(f"Model inspection after task {task} (conv layer {layer})", fontsize=9)
    fig.subplots_adjust(left=0.04, right=0.9, top=1 - 0.62 / height, bottom=0.25 / height,
                        hspace=0.55 * len(sections) / max(1, sum(rows)) + 0.15)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


class ModelInspection(ContinualCallback):
    """After every task: conv layer `layer`'s kernels (first `max_filters`, summed over input
    channels) and their change since the previous task end; images maximising each of those
    filters' centre unit and each class's logit (`AscentOptions`). Needs a conv model. Logs
    `probe/inspection/kernel_change` (relative Frobenius change since the last task end)."""

    needs = ("conv",)
    config_label = "inspection (kernels, activation maximisation)"

    def __init__(self, layer: int | str = 0, max_filters: int = 20, kernels: bool = True, filters: bool = True,
                 classes: bool = True, steps: int = 96, lr: float = 0.05, jitter: int = 2, blur_sigma: float = 0.5,
                 blur_every: int = 4, seed: int = 0, dpi: int = 80, output_dir: str | None = None) -> None:
        require(isinstance(max_filters, int) and max_filters >= 1, "probes.inspection.max_filters",
                f"{max_filters!r} must be an integer >= 1")
        require(kernels or filters or classes, "probes.inspection", "kernels, filters and classes are all off",
                "turn one on or use probes=none")
        self.layer, self.max_filters = layer, max_filters
        self.show_kernels, self.show_filters, self.show_classes = kernels, filters, classes
        self.ascent = AscentOptions(steps, lr, jitter, blur_sigma, blur_every, seed)
        self.dpi, self.output_dir = dpi, output_dir
        self.input_shape: tuple[int, ...] = ()
        self.mean, self.std, self.head_sizes, self.multihead = 0.0, 1.0, [1], False
        self.kernels: dict[int, Tensor] = {}  # per task end, checkpointed (the change needs the last)
        self.kernel_change: dict[int, float] = {}
        self.seconds = 0.0

    def attach(self, stream: TaskStream, output_dir: str | Path) -> None:
        test = stream.test(0)
        self.input_shape = tuple(stream.input_shape)
        self.mean, self.std = normalisation_of(test)
        self.head_sizes, self.multihead = list(stream.head_sizes), bool(stream.multihead)
        self.output_dir = self.output_dir or str(output_dir)

    def check_model(self, net: nn.Module) -> None:
        conv_at(net, self.layer, "probes.inspection.layer")

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        results = next((cb for cb in trainer.callbacks if isinstance(cb, ContinualResults)), None)
        if results is not None:
            results.add_section("inspection", lambda: {"inspection": {
                "seconds": round(self.seconds, 3), "kernel_change": dict(self.kernel_change)}})

    def on_task_end(self, trainer: L.Trainer, module: L.LightningModule, task: int) -> None:
        if not self.input_shape or not trainer.is_global_zero:
            return
        start = time.perf_counter()
        net = module.net
        was_training = net.training
        net.eval()
        try:
            path = self._inspect(net, task, module.device)
        finally:
            net.train(was_training)
        if task in self.kernel_change:
            for logger in trainer.loggers:
                logger.log_metrics({"probe/inspection/kernel_change": self.kernel_change[task]},
                                   step=trainer.global_step)
        log_image(trainer, "probes/inspection", path, step=trainer.global_step)
        self.seconds += time.perf_counter() - start

    def _inspect(self, net: nn.Module, task: int, device: torch.device) -> Path:
        layer = conv_at(net, self.layer, "probes.inspection.layer")
        name = next(n for n, m in net.named_modules() if m is layer)
        filters = min(self.max_filters, layer.out_channels)
        now = kernels(layer, filters)
        self.kernels[task] = now
        sections: list[tuple[str, Tensor, str, bool, int]] = []
        if self.show_kernels:
            side = self.input_shape[-1]  # kernels drawn as large as the images below them
            sections.append((f"kernels after task {task} (summed over input channels)", _enlarge(now.unsqueeze(1), side),
                             "weight", True, PER_ROW))
            before = self.kernels.get(task - 1)
            if before is not None:
                self.kernel_change[task] = float((now - before).norm() / before.norm().clamp_min(1e-12))
                sections.append((f"change since task {task - 1} (relative Frobenius norm "
                                 f"{self.kernel_change[task]:.3f})", _enlarge((now - before).unsqueeze(1), side),
                                 "weight change", True, PER_ROW))
        if self.show_filters:
            images, start, end = ascend(filter_objective(net, layer, filters), (filters, *self.input_shape),
                                        self.mean, self.std, self.ascent, device)
            sections.append((f"images maximising each filter's centre unit (mean activation from noise "
                             f"{start.mean():.2f} -> {end.mean():.2f})", images, "pixel intensity", False, PER_ROW))
        labels = None
        if self.show_classes:
            classes, heads = class_targets(self.head_sizes, self.multihead)
            images, start, end = ascend(class_objective(net, classes.to(device), heads.to(device)),
                                        (len(classes), *self.input_shape), self.mean, self.std, self.ascent, device)
            per_row = max(self.head_sizes) if self.multihead else min(PER_ROW, len(classes))
            sections.append((f"images maximising each class's logit (class under each; mean logit {start.mean():.2f} -> "
                             f"{end.mean():.2f}){'; one row per task head' if self.multihead else ''}",
                             images, "pixel intensity", False, per_row))
            labels = [f"class {c}" if per_row <= 5 else str(c) for c in classes[:per_row].tolist()]
        path = Path(self.output_dir) / "probes" / "inspection" / f"after_task{task}.png"
        return draw_inspection(path, task, name, sections, labels, self.dpi)

    def state_dict(self) -> dict[str, Any]:
        return {"kernels": dict(self.kernels), "kernel_change": dict(self.kernel_change), "seconds": self.seconds}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.kernels, self.kernel_change = dict(state["kernels"]), dict(state["kernel_change"])
        self.seconds = state["seconds"]
