"""Diagnostics on real runs (sklearn digits): confusion matrices equal sklearn's on the same samples,
embeddings are the net's penultimate features, everything reaches TensorBoard and W&B (offline),
the accuracy plots start at the random-init point, and a resumed run keeps the matrices."""

from __future__ import annotations

import csv
import glob
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import confusion_matrix
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

from retentive.callbacks.plots import accuracy_curves_figure, accuracy_matrix_figure
from retentive.config import compose_config
from retentive.errors import ConfigError
from retentive.probes.sample import fixed_sample
from retentive.resume.checkpoint import load_checkpoint
from retentive.runner import ContinualRun, build_network, run
from retentive.validation import build

CAP = 10  # confusion samples per seen task: fewer than digits' ~30 validation images, so the cap is exercised
CLASS_IL = ["dataset=split_digits", "dataset.class_groups=[[0,1],[2,3],[4,5]]", "schedule.epochs_per_task=2",
            "loader.batch_size=32", "logger=default", "callbacks=diagnostics", "checkpoint.keep_every_task=true",
            f"callbacks.confusion.max_samples_per_task={CAP}", "callbacks.embeddings.samples_per_task=30",
            "callbacks.embeddings.max_iter=250", "callbacks.progress=null"]


@pytest.fixture(scope="module")
def class_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("class_il")
    run(compose_config(CLASS_IL, out), out)
    return out


def net_and_stream(out: Path, checkpoint: str):
    cfg = compose_config(CLASS_IL, out)
    stream = build(cfg.dataset, "dataset")
    net = build_network(cfg, stream)
    net.load_state_dict(torch.load(out / "checkpoints" / checkpoint, weights_only=True)["net"])
    return net.eval(), stream


def entries(out: Path) -> list[dict]:
    return json.loads((out / "diagnostics" / "confusion.json").read_text())["entries"]


def test_confusion_matrix_equals_sklearn_on_the_first_validation_samples_of_every_seen_task(class_run):
    found = entries(class_run)
    assert [(e["trained_task"], e["epoch"]) for e in found] == [(0, 0), (0, 1), (1, 2), (1, 3), (2, 4), (2, 5)]
    for task in range(3):
        net, stream = net_and_stream(class_run, f"after_task{task}.pt")
        last = [e for e in found if e["trained_task"] == task][-1]  # the task's last epoch: its final net
        batches = [stream.val(t).batch(range(CAP)) for t in range(task + 1)]
        y = torch.cat([b.y for b in batches])
        with torch.no_grad():
            predicted = torch.cat([net(b.x, b.t).argmax(1) for b in batches])
        expected = confusion_matrix(y.numpy(), predicted.numpy(), labels=list(range(6)))  # 3 tasks of 2 classes
        got = np.array(last["matrix"])
        assert got.shape == (6, 6) and (got == expected).all()
        assert (got.sum(axis=1) == np.bincount(y.numpy(), minlength=6)).all()  # rows: samples per true class
        assert last["samples"] == CAP * (task + 1) and got[2 * (task + 1):].sum() == 0  # unseen tasks: no rows
    assert sorted(p.name for p in (class_run / "diagnostics").glob("*.png")) == [
        *[f"confusion_after_task{k}.png" for k in range(3)], "confusion_latest.png",
        *[f"tsne_after_task{k}.png" for k in range(3)]]


def test_projector_holds_the_penultimate_features_of_the_fixed_sample_with_label_and_task(class_run):
    config = (class_run / "tensorboard" / "projector_config.pbtxt").read_text()
    steps = json.loads((class_run / "results.json").read_text())["task_end_steps"]
    assert config.count("embeddings {") == 3 and all(f"penultimate:{s:05d}" in config for s in steps)
    folder = class_run / "tensorboard" / f"{steps[-1]:05d}" / "penultimate"
    net, stream = net_and_stream(class_run, "last.pt")
    sample = [fixed_sample(stream.test(t), 30, seed=0) for t in range(3)]
    with torch.no_grad():
        features = torch.cat([net.features(b.x) for b in sample])
    logged = np.loadtxt(folder / "tensors.tsv", delimiter="\t")
    assert logged.shape == tuple(features.shape) and np.allclose(logged, features.numpy(), atol=1e-4)
    metadata = list(csv.reader((folder / "metadata.tsv").read_text().splitlines(), delimiter="\t"))
    assert metadata[0] == ["label", "task", "task_name"]
    assert [(int(r[0]), int(r[1])) for r in metadata[1:]] == [
        (int(y), int(t)) for b in sample for y, t in zip(b.y, b.t, strict=True)]
    assert (folder / "sprite.png").exists()


def test_tensorboard_gets_every_figure_and_the_accuracy_table(class_run):
    steps: dict[str, list[int]] = {}
    for path in sorted(glob.glob(str(class_run / "tensorboard" / "events.out.tfevents.*"))):
        for event in EventFileLoader(path).Load():
            for value in event.summary.value:
                steps.setdefault(value.tag, []).append(event.step)
    task_ends = json.loads((class_run / "results.json").read_text())["task_end_steps"]
    assert steps["diagnostics/confusion_matrix"] == [e["step"] for e in entries(class_run)]  # every epoch
    for tag in ("diagnostics/tsne", "plots/accuracy_curves", "plots/accuracy_matrix",
                "tables/accuracy_matrix/text_summary"):
        assert steps[tag] == task_ends, tag


def test_task_il_matrix_is_block_diagonal_and_its_trace_is_the_logged_validation_accuracy(tmp_path):
    overrides = ["dataset=split_digits", "dataset.scenario=task", "dataset.class_groups=[[0,1,2],[3,4]]",
                 "logger=none", "callbacks=diagnostics", "callbacks.embeddings=null", "callbacks.progress=null",
                 "callbacks.confusion.max_samples_per_task=null"]
    run(compose_config(overrides, tmp_path), tmp_path)
    saved = json.loads((tmp_path / "diagnostics" / "confusion.json").read_text())
    assert saved["labels"] == ["0:0", "0:1", "0:2", "1:0", "1:1"] and saved["offsets"] == [0, 3]
    matrix = np.array(saved["entries"][-1]["matrix"])
    assert matrix[:3, 3:].sum() == 0 and matrix[3:, :3].sum() == 0  # a head never scores another task's classes
    cfg = compose_config(overrides, tmp_path)
    stream = build(cfg.dataset, "dataset")
    net = build_network(cfg, stream)
    net.load_state_dict(torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)["net"])
    history = list(csv.DictReader((tmp_path / "metrics.csv").read_text().splitlines()))
    for task, (lo, hi) in enumerate([(0, 3), (3, 5)]):
        batch = stream.val(task).batch()
        with torch.no_grad():
            predicted = net.eval()(batch.x, batch.t).argmax(1)
        assert (matrix[lo:hi, lo:hi] == confusion_matrix(batch.y, predicted, labels=range(hi - lo))).all()
        logged = [float(r["accuracy"]) for r in history if r["split"] == "val" and int(r["eval_task"]) == task][-1]
        assert np.trace(matrix[lo:hi, lo:hi]) / matrix[lo:hi].sum() == pytest.approx(logged, abs=1e-6)


class Stop(Exception):
    pass


def test_a_resumed_run_keeps_the_matrices_and_writes_the_same_ones(class_run, tmp_path):
    import lightning as L

    class StopInTask2(L.Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if module.current_task == 2 and trainer.current_epoch == 5:  # the task's second epoch
                raise Stop

    interrupted = ContinualRun(compose_config(CLASS_IL, tmp_path), tmp_path)
    interrupted.trainer.callbacks.append(StopInTask2())
    with pytest.raises(Stop):
        interrupted.fit()
    assert [e["epoch"] for e in entries(tmp_path)] == [0, 1, 2, 3, 4]
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert len(state["callbacks"]["ConfusionMatrices"]["entries"]) == 5
    ContinualRun(compose_config(CLASS_IL, tmp_path), tmp_path, state).fit()
    assert entries(tmp_path) == entries(class_run)


def test_accuracy_plots_start_at_random_init_draw_the_seen_mean_and_use_percent(class_run):
    results = json.loads((class_run / "results.json").read_text())
    history = [{**r, **{k: int(r[k]) for k in ("trained_task", "step", "eval_task")}, "accuracy": float(r["accuracy"])}
               for r in csv.DictReader((class_run / "metrics.csv").read_text().splitlines())]
    fig = accuracy_curves_figure(history, results["task_names"], results["task_end_steps"],
                                 reference=results["random_init_accuracy"])
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    for task, name in enumerate(results["task_names"]):
        xs, ys = lines[f"task {task} ({name})"].get_data()
        assert xs[0] == 0 and ys[0] == pytest.approx(results["random_init_accuracy"][task])
    xs, ys = lines["mean of seen tasks"].get_data()
    last = [r for r in history if r["split"] == "val" and r["step"] == xs[-1]]
    assert ys[-1] == pytest.approx(np.mean([r["accuracy"] for r in last if r["eval_task"] <= 2]))
    assert lines["mean of seen tasks"].get_linewidth() >= 2.5
    heatmap = accuracy_matrix_figure(results["accuracy_matrix"], results["task_names"])
    image = heatmap.axes[0].get_images()[0]
    assert image.get_clim() == (0, 100) and "%" in heatmap.axes[0].get_title()
    assert "%" in heatmap.axes[1].get_ylabel()  # the colour bar
    assert image.get_array()[0, 0] == pytest.approx(100 * results["accuracy_matrix"][0][0])


def test_wandb_offline_run_is_grouped_tagged_and_holds_the_images_and_the_accuracy_table(tmp_path):
    overrides = ["dataset=split_digits", "dataset.class_groups=[[0,1],[2,3]]", "logger=wandb", "tags=[unit,digits]",
                 "callbacks=diagnostics", "callbacks.embeddings.samples_per_task=20", "callbacks.embeddings.max_iter=250",
                 "callbacks.progress=null"]
    continual = ContinualRun(compose_config(overrides, tmp_path), tmp_path)
    summary = continual.fit()
    experiment = next(lg for lg in continual.loggers if type(lg).__name__ == "WandbLogger").experiment
    assert (experiment.group, tuple(experiment.tags), experiment.job_type) == (
        "split_digits-naive", ("unit", "digits"), "train")
    files = Path(glob.glob(str(tmp_path / "wandb" / "offline-run-*" / "files"))[0])
    images = {p.parent.name + "/" + p.name.rsplit("_", 2)[0] for p in (files / "media" / "images").rglob("*.png")}
    assert images == {"plots/accuracy_curves", "plots/accuracy_matrix", "diagnostics/confusion_matrix",
                      "diagnostics/tsne"}
    tables = sorted((files / "media" / "table" / "tables").glob("accuracy_matrix_*.table.json"),
                    key=lambda p: int(p.name.split("_")[2]))
    assert len(tables) == 2
    final = json.loads(tables[-1].read_text())
    assert final["columns"] == ["trained up to", "0: 0/1", "1: 2/3"]
    assert final["data"] == [["random init", *summary["random_init_accuracy"]],
                             *[[f"task {i}", *row] for i, row in enumerate(summary["accuracy_matrix"])]]


@pytest.mark.parametrize("override, key", [
    ("callbacks.confusion.every_n_epochs=0", "callbacks.confusion.every_n_epochs"),
    ("callbacks.embeddings.max_iter=100", "callbacks.embeddings.max_iter"),
    ("callbacks.embeddings.split=train", "callbacks.embeddings.split"),
])
def test_bad_diagnostics_knobs_stop_before_training(tmp_path, override, key):
    with pytest.raises(ConfigError, match=f"^{key}: "):
        overrides = ["dataset=split_digits", "logger=none", "callbacks=diagnostics", override]
        ContinualRun(compose_config(overrides, tmp_path), tmp_path)
    assert not (tmp_path / "results.json").exists()
