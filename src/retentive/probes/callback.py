"""AttributionProbes: after every task, explain a fixed sample of every trained task's test set."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor

from retentive.callbacks.continual import ContinualCallback
from retentive.callbacks.results import ContinualResults
from retentive.data.batch import Batch
from retentive.data.stream import TaskStream
from retentive.errors import ConfigError, require
from retentive.loggers import log_image
from retentive.probes.attribution import PROBES, AttributionProbe, Explanation, make_probe
from retentive.probes.baselines import normalisation_of, to_pixels
from retentive.probes.figures import ProbedImage, draw_probe_figure
from retentive.probes.sample import fixed_sample


def mask_share(maps: Tensor, masks: Tensor) -> float:
    """Fraction of absolute attribution that falls inside the masked (spurious) region."""
    weights = maps.abs()
    inside = (weights * (masks.sum(dim=1, keepdim=True) > 0)).sum()
    return float(inside / weights.sum().clamp_min(1e-12))


def target_mode(target: Any) -> str | int:
    """`label` (true class), `predicted`, or a fixed class; YAML's bare `true` means the label."""
    if target is True or target in ("label", "true"):
        return "label"
    if target == "predicted":
        return "predicted"
    if isinstance(target, int) and not isinstance(target, bool) and target >= 0:
        return target
    raise ConfigError("probes.captum.target", f"{target!r} is not a target",
                      "choose label (the true class), predicted, or a class index >= 0")


class AttributionProbes(ContinualCallback):
    """After task k, explains a fixed seeded sample (`samples_per_task`, `sample_seed`) of the test
    sets of tasks 0..k with every method, for class `target`, and writes
    `probes/<method>/after_task<k>.png` (sent to TensorBoard / W&B as `probes/<method>`). Maps of
    earlier task ends are kept (and checkpointed) so every figure shows an image's maps after every
    task since its own, on one colour scale. On datasets with masks it logs
    `probe/<method>/mask_share/task<j>`; IG logs `probe/integrated_gradients/relative_delta/task<j>`
    (|completeness gap| / |attribution sum|). Time spent (per method, figures) and the time in
    `trainer.fit` go to results.json under `probes`.
    """

    def __init__(self, methods: Sequence[str] = ("saliency", "integrated_gradients", "occlusion"),
                 target: Any = "label", samples_per_task: int = 2, sample_seed: int = 0,
                 options: Mapping[str, Mapping[str, Any]] | None = None, figures: bool = True, dpi: int = 80,
                 output_dir: str | None = None) -> None:
        options = {name: dict(knobs or {}) for name, knobs in (options or {}).items()}
        for name, knobs in options.items():  # every entry checked, also of methods not chosen now
            if name not in PROBES:
                raise ConfigError(f"probes.captum.options.{name}", "is not a probe",
                                  f"choose from {', '.join(PROBES)}")
            make_probe(name, **knobs)
        require(isinstance(samples_per_task, int) and samples_per_task >= 1, "probes.captum.samples_per_task",
                f"{samples_per_task!r} must be an integer >= 1")
        self.probes: list[AttributionProbe] = [make_probe(m, **options.get(m, {})) for m in methods]
        self.target = target_mode(target)
        self.samples_per_task, self.sample_seed = samples_per_task, sample_seed
        self.figures, self.dpi, self.output_dir = figures, dpi, output_dir
        self.needs = tuple(dict.fromkeys(need for probe in self.probes for need in probe.needs))
        self.config_label = " and ".join(p.name for p in self.probes if p.needs) or "AttributionProbes"
        self.samples: list[Batch] = []
        self.pixel_mean, self.pixel_std = 0.0, 1.0
        # kept across task ends and checkpointed: per task end, the maps of every probed image
        self.maps: dict[str, dict[int, Tensor]] = {p.name: {} for p in self.probes}
        self.predictions: dict[int, Tensor] = {}
        self.targets: dict[int, Tensor] = {}
        self.seconds: dict[str, float] = {"figures": 0.0, "fit": 0.0, **{p.name: 0.0 for p in self.probes}}
        self._fit_start = 0.0

    # -- set-up -----------------------------------------------------------------------------
    def attach(self, stream: TaskStream, output_dir: str | Path) -> None:
        """The runner hands over the task stream and the run dir (before any training)."""
        tests = [stream.test(t) for t in range(stream.num_tasks)]
        self.samples = [fixed_sample(d, self.samples_per_task, self.sample_seed) for d in tests]
        self.pixel_mean, self.pixel_std = normalisation_of(tests[0])
        for probe in self.probes:
            probe.pixel_mean, probe.pixel_std = self.pixel_mean, self.pixel_std
        self.output_dir = self.output_dir or str(output_dir)
        if isinstance(self.target, int) and self.target >= min(stream.head_sizes):
            raise ConfigError("probes.captum.target", f"class {self.target} is outside a head of "
                              f"{min(stream.head_sizes)} classes", f"choose a class below {min(stream.head_sizes)}")

    def check_model(self, net: torch.nn.Module) -> None:
        """Options that need the model (a GradCAM layer that must exist), before any training."""
        for probe in self.probes:
            probe.check(net)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        results = next((cb for cb in trainer.callbacks if isinstance(cb, ContinualResults)), None)
        if results is not None:
            results.add_section("probes", lambda: {"probes": self.summary()})

    # -- timing -----------------------------------------------------------------------------
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._fit_start = time.perf_counter()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.seconds["fit"] += time.perf_counter() - self._fit_start

    def summary(self) -> dict[str, Any]:
        """results.json `probes`: seconds per method and for figures, and their share of fit time."""
        spent = sum(v for k, v in self.seconds.items() if k != "fit")
        return {"seconds": round(spent, 3), "fit_seconds": round(self.seconds["fit"], 3),
                "share_of_fit": round(spent / self.seconds["fit"], 4) if self.seconds["fit"] else None,
                "seconds_by_part": {k: round(v, 3) for k, v in self.seconds.items() if k != "fit"}}

    # -- the probes ---------------------------------------------------------------------------
    def _targets(self, batch: Batch, predictions: Tensor) -> Tensor:
        if self.target == "label":
            return batch.y
        if self.target == "predicted":
            return predictions
        return torch.full_like(batch.y, self.target)

    def on_task_end(self, trainer: L.Trainer, module: L.LightningModule, task: int) -> None:
        if not self.samples or not trainer.is_global_zero:
            return
        batch = Batch.cat(self.samples[: task + 1]).to(module.device)
        net = module.net
        was_training = net.training
        net.eval()
        with torch.no_grad():
            predictions = net(batch.x, batch.t).argmax(dim=1)
        targets = self._targets(batch, predictions)
        self.predictions[task], self.targets[task] = predictions.cpu(), targets.cpu()
        metrics: dict[str, float] = {}
        explanations: dict[str, Explanation] = {}
        try:
            for probe in self.probes:
                start = time.perf_counter()
                explanation = probe.explain(net, batch.x, batch.t, targets)
                explanations[probe.name] = Explanation(explanation.maps.cpu(),
                                                       None if explanation.overlay is None else explanation.overlay.cpu(),
                                                       None if explanation.delta is None else explanation.delta.cpu())
                self.seconds[probe.name] += time.perf_counter() - start
                self.maps[probe.name][task] = explanations[probe.name].maps
                metrics.update(self._metrics(probe.name, explanations[probe.name], batch.to("cpu")))
        finally:
            net.train(was_training)
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)
        if self.figures:
            start = time.perf_counter()
            for probe in self.probes:
                path = self._draw(probe, task, batch.to("cpu"), explanations[probe.name])
                log_image(trainer, f"probes/{probe.name}", path, step=trainer.global_step)
            self.seconds["figures"] += time.perf_counter() - start

    def _metrics(self, name: str, explanation: Explanation, batch: Batch) -> dict[str, float]:
        metrics = {}
        for j in torch.unique(batch.t).tolist():
            rows = batch.t == j
            if batch.mask is not None:
                metrics[f"probe/{name}/mask_share/task{j}"] = mask_share(explanation.maps[rows], batch.mask[rows])
            if explanation.delta is not None:
                totals = explanation.maps[rows].flatten(1).sum(1).abs().clamp_min(1e-12)
                relative = explanation.delta[rows].abs() / totals
                metrics[f"probe/{name}/relative_delta/task{j}"] = float(relative.mean())
        return metrics

    def _draw(self, probe: AttributionProbe, task: int, batch: Batch, explanation: Explanation) -> Path:
        pixels = to_pixels(batch.x, self.pixel_mean, self.pixel_std)
        overlay = explanation.maps if explanation.overlay is None else explanation.overlay
        rows = []
        for i in range(len(batch)):
            own = int(batch.t[i])
            # task ends since the image's own (a method added on resume lacks the earlier ones)
            ends = [m for m in range(own, task + 1) if m in self.maps[probe.name]]
            rows.append(ProbedImage(
                pixels=pixels[i], task=own, label=int(batch.y[i]),
                maps={m: self.maps[probe.name][m][i] for m in ends},
                predictions={m: int(self.predictions[m][i]) for m in ends},
                targets={m: int(self.targets[m][i]) for m in ends}, overlay=overlay[i]))
        path = Path(self.output_dir) / "probes" / probe.name / f"after_task{task}.png"
        overlay_unit = "delta ⊙ pixel (first-order logit contribution)" if explanation.overlay is not None else None
        return draw_probe_figure(path, probe.name, probe.unit, task, str(self.target), rows, overlay_unit, self.dpi)

    # -- resume -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"maps": {k: dict(v) for k, v in self.maps.items()}, "predictions": dict(self.predictions),
                "targets": dict(self.targets), "seconds": dict(self.seconds)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, maps in state["maps"].items():
            if name in self.maps:
                self.maps[name] = dict(maps)
        self.predictions, self.targets = dict(state["predictions"]), dict(state["targets"])
        self.seconds.update(state["seconds"])
