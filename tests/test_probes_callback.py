"""The probe callbacks in real runs (sklearn digits, conv net): figures per method per task end,
images in TensorBoard, explained targets as configured, timings in results.json, and a resumed
run drawing the same figures as the uninterrupted one."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from hydra.utils import instantiate
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from retentive.config import compose_config
from retentive.probes.sample import fixed_sample
from retentive.resume.checkpoint import load_checkpoint
from retentive.runner import run

TWO_TASKS = ["dataset=split_digits", "dataset.class_groups=[[0,1],[2,3]]", "model=cnn"]


def test_figures_tensorboard_images_metrics_and_timings_after_every_task(run_config):
    summary, out = run_config(*TWO_TASKS, "probes=[gradcam,inspection]", "logger=default", "callbacks=none",
                              quiet=False)
    methods = ["saliency", "integrated_gradients", "occlusion", "gradcam", "inspection"]
    for method in methods:
        assert sorted(p.name for p in (out / "probes" / method).glob("*.png")) == ["after_task0.png", "after_task1.png"]
    events = EventAccumulator(str(out / "tensorboard"), size_guidance={"images": 0}).Reload()
    images = [tag for tag in events.Tags()["images"] if tag.startswith("probes/")]
    assert sorted(images) == sorted(f"probes/{m}" for m in methods)
    assert len(events.Images("probes/gradcam")) == 2  # one per task end
    scalars = events.Tags()["scalars"]
    assert {"probe/integrated_gradients/relative_delta/task0", "probe/inspection/kernel_change"} <= set(scalars)
    probes = json.loads((out / "results.json").read_text())["probes"]
    assert probes == summary["probes"] and probes["fit_seconds"] > 0
    assert set(probes["seconds_by_part"]) == {"figures", *methods[:4]}
    assert probes["share_of_fit"] == pytest.approx(probes["seconds"] / probes["fit_seconds"], rel=0.01)
    assert summary["inspection"]["seconds"] > 0 and set(summary["inspection"]["kernel_change"]) == {1}


def _probe_state(out):
    return torch.load(out / "checkpoints" / "last.pt", weights_only=True)["callbacks"]["AttributionProbes"]


def test_targets_are_the_true_labels_by_default_or_the_prediction_or_a_fixed_class(run_config, tmp_path):
    for target in ("label", "predicted", "1"):
        _, out = run_config(*TWO_TASKS, "probes=default", f"probes.captum.target={target}",
                            "probes.captum.figures=false", "probes.captum.samples_per_task=3")
        state, stream = _probe_state(out), instantiate(compose_config(TWO_TASKS, out).dataset)
        labels = torch.cat([fixed_sample(stream.test(t), 3, 0).y for t in range(2)])
        assert set(state["targets"]) == {0, 1} and len(state["maps"]["occlusion"][1]) == 6
        expected = {"label": labels, "predicted": state["predictions"][1], "1": torch.ones(6, dtype=torch.long)}
        assert torch.equal(state["targets"][1], expected[target]), target
        assert torch.equal(state["targets"][0], expected[target][:3] if target != "predicted"
                           else state["predictions"][0])
        for path in out.iterdir():
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def test_a_run_resumed_after_task_0_draws_the_same_figures(run_config, tmp_path):
    _, out = run_config(*TWO_TASKS, "probes=gradcam", "checkpoint.keep_every_task=true")
    figures = {m: (out / "probes" / m / "after_task1.png").read_bytes() for m in ("saliency", "gradcam")}
    state = _probe_state(out)
    assert set(state["maps"]["gradcam"]) == {0, 1}  # the maps of both task ends are checkpointed
    shutil.copy(out / "checkpoints" / "after_task0.pt", out / "checkpoints" / "last.pt")
    for method in figures:
        (out / "probes" / method / "after_task1.png").unlink()
    resumed = TWO_TASKS + ["probes=gradcam", "checkpoint.keep_every_task=true", "logger=none", "callbacks=none"]
    run(compose_config(resumed, out), out, load_checkpoint(out / "checkpoints" / "last.pt"))
    for method, before in figures.items():
        assert (out / "probes" / method / "after_task1.png").read_bytes() == before, method


def test_probes_leave_training_unchanged(run_config, tmp_path):
    """Same seed with and without every probe: the same accuracy matrix (no gradients, RNG draws
    or train-mode changes leak from the probes into training)."""
    with_probes, _ = run_config(*TWO_TASKS, "probes=[gradcam,inspection]", "probes.captum.figures=false")
    without, _ = run_config(*TWO_TASKS, "probes=none")
    assert with_probes["accuracy_matrix"] == without["accuracy_matrix"]


def test_mask_share_is_logged_per_method_and_task_on_decoy_mnist(run_config):
    """DecoyMNIST's masks mark the decoy patch: every method logs its share of attribution there."""
    _, out = run_config("dataset=decoy_mnist", "dataset.train_samples_per_task=256",
                        "dataset.test_samples_per_task=64", "probes=default", "probes.captum.figures=false",
                        "logger=default", "callbacks=none", quiet=False)
    events = EventAccumulator(str(out / "tensorboard"), size_guidance={"scalars": 0}).Reload()
    for method in ("saliency", "integrated_gradients", "occlusion"):
        (share,) = events.Scalars(f"probe/{method}/mask_share/task0")
        assert 0 < share.value < 1, method
