"""End-to-end continual runs on real MNIST slices: forgetting is measured, and measured right."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from tests.conftest import needs_mnist

SLICE = [
    "dataset=split_mnist",
    "dataset.train_samples_per_task=1000",
    "dataset.test_samples_per_task=400",
    "schedule.steps_per_task=200",  # fixed iterations per task, as in van de Ven & Tolias (2019)
    "schedule.epochs_per_task=2",  # ... with two all-task evaluations per task
    "loader.batch_size=64",
]


@pytest.fixture(scope="module")
def split_mnist_runs(tmp_path_factory):
    """Naive Class-IL, joint Class-IL and naive Task-IL on the same slices (shared by the tests)."""
    from retentive.config import compose_config
    from retentive.runner import run

    results = {}
    for strategy, scenario in [("naive", "class"), ("joint", "class"), ("naive", "task")]:
        out = tmp_path_factory.mktemp(f"{strategy}-{scenario}")
        quiet = [] if (strategy, scenario) == ("naive", "class") else ["logger=none"]  # one run with loggers
        overrides = [*SLICE, f"strategy={strategy}", f"dataset.scenario={scenario}", *quiet]
        results[strategy, scenario] = run(compose_config(overrides, out), out), out
    return results


@needs_mnist
def test_finetuning_forgets_in_class_il_but_joint_does_not(split_mnist_runs):
    naive, _ = split_mnist_runs["naive", "class"]
    joint, _ = split_mnist_runs["joint", "class"]
    assert naive["ACC"] < 0.30
    assert joint["ACC"] >= 0.90
    # naive learned each task when it saw it (diagonal high) and then lost it (BWT strongly negative)
    diagonal = [naive["accuracy_matrix"][i][i] for i in range(5)]
    assert min(diagonal) > 0.9
    assert naive["BWT"] < -0.6 and naive["forgetting"] == pytest.approx(-naive["BWT"], abs=0.05)
    # a Class-IL head knows nothing of unseen classes: accuracy exactly 0 above the diagonal
    assert all(naive["accuracy_matrix"][i][j] == 0.0 for i in range(5) for j in range(i + 1, 5))


@needs_mnist
def test_task_il_keeps_accuracy_far_above_class_il(split_mnist_runs):
    task_il, _ = split_mnist_runs["naive", "task"]
    class_il, _ = split_mnist_runs["naive", "class"]
    assert task_il["ACC"] > class_il["ACC"] + 0.5
    # with a two-way head per task, an untrained head is near chance, never 0 like Class-IL
    assert 0.2 < task_il["random_init_accuracy"][0] < 0.8


@needs_mnist
def test_run_writes_matrix_metrics_plots_and_tensorboard(split_mnist_runs):
    summary, out = split_mnist_runs["naive", "class"]
    saved = json.loads((out / "results.json").read_text())
    assert saved["status"] == "complete" and saved["tasks_completed"] == 5
    matrix = saved["accuracy_matrix"]
    assert len(matrix) == 5 and all(len(row) == 5 for row in matrix)
    assert saved["ACC"] == pytest.approx(sum(matrix[-1]) / 5)
    rows = list(csv.DictReader((out / "metrics.csv").read_text().splitlines()))
    val_rows = [r for r in rows if r["split"] == "val"]
    assert len(val_rows) == 5 * 2 * 5  # every task, every epoch of every task
    test_rows = [r for r in rows if r["split"] == "test"]
    assert len(test_rows) == 6 * 5  # random init + after each task
    last_test = [float(r["accuracy"]) for r in test_rows[-5:]]
    assert last_test == pytest.approx(matrix[-1])
    assert (out / "accuracy_curves.png").stat().st_size > 10_000
    assert (out / "accuracy_matrix.png").stat().st_size > 10_000
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert (out / "csv" / "metrics.csv").exists()


def test_same_seed_gives_identical_runs(run_config, tmp_path):
    overrides = ["dataset=split_digits", "schedule.epochs_per_task=2", "seed=3"]
    first, out = run_config(*overrides)
    first_csv = (out / "metrics.csv").read_text()
    second, _ = run_config(*overrides)
    assert first["accuracy_matrix"] == second["accuracy_matrix"]
    assert first_csv == (out / "metrics.csv").read_text()  # losses too, to the last digit
    other, _ = run_config(*overrides[:-1], "seed=4")
    assert other["accuracy_matrix"] != first["accuracy_matrix"]


def test_iteration_based_schedule_counts_steps(run_config):
    summary, out = run_config("dataset=split_digits", "schedule.steps_per_task=12", "schedule.epochs_per_task=3",
                              "loader.batch_size=32")
    rows = list(csv.DictReader((out / "metrics.csv").read_text().splitlines()))
    steps = sorted({int(r["step"]) for r in rows if r["split"] == "val"})
    assert steps == [4 * k for k in range(1, 16)]  # 3 evaluations per task, 12 steps per task


def test_checkpoint_reloads_the_final_network_and_evaluate_retests_it(run_config):
    import torch

    from retentive.data import SplitDigits
    from retentive.evaluate import evaluate_checkpoint
    from retentive.models import build_net, mlp_backbone

    summary, out = run_config("dataset=split_digits", "callbacks=default", "callbacks.progress=null")
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=True)  # no pickled code in it
    assert state["position"] == {"task": 4, "task_done": True, "epoch": 5, "global_step": state["position"]["global_step"]}
    stream = SplitDigits(scenario="class")
    net = build_net(mlp_backbone, stream.input_shape, stream.head_sizes, False)
    net.load_state_dict(state["net"])
    x, y, t = stream.test(4).batch()
    accuracy = (net(x, t).argmax(1) == y).float().mean().item()
    assert accuracy == pytest.approx(summary["accuracy_matrix"][-1][4], abs=1e-6)
    report = evaluate_checkpoint(out / "checkpoints" / "last.pt")
    assert report["accuracy"] == pytest.approx(summary["accuracy_matrix"][-1], abs=1e-6)


def test_no_validation_split_fails_before_training(run_config):
    from retentive.errors import ConfigError

    with pytest.raises(ConfigError, match="dataset.val_fraction"):
        run_config("dataset=split_digits", "dataset.val_fraction=0")


@pytest.mark.parametrize("strategy", ["naive", "joint"])
def test_only_joint_trains_on_earlier_tasks_data(strategy, tmp_path):
    from retentive.config import compose_config
    from retentive.runner import ContinualRun

    run = ContinualRun(compose_config(["dataset=split_digits", f"strategy={strategy}", "logger=none",
                                       "callbacks=none"], tmp_path), tmp_path)
    for task in range(run.stream.num_tasks):
        seen = torch.cat([batch.t for batch in run._train_loader(task)])
        expected = set(range(task + 1)) if strategy == "joint" else {task}
        assert set(seen.tolist()) == expected
        sizes = sum(len(run.stream.train(k)) for k in expected)
        assert len(seen) == sizes  # one epoch = every training sample of those tasks once


@pytest.mark.parametrize("reset", [True, False])
def test_optimizer_state_is_reset_per_task_or_kept(reset, tmp_path):
    from retentive.config import compose_config
    from retentive.runner import ContinualRun

    cfg = compose_config(["dataset=split_digits", "dataset.class_groups=[[0,1],[2,3]]", "logger=none",
                          "callbacks=none", f"schedule.reset_optimizer={reset}"], tmp_path)
    run = ContinualRun(cfg, tmp_path)
    run.fit()
    adam = run.trainer.optimizers[0]
    steps = {int(state["step"]) for state in adam.state.values()}
    per_task = len(run._train_loader(1))
    assert steps == ({per_task} if reset else {per_task + len(run._train_loader(0))})


@pytest.mark.parametrize("consolidate", [False, True])
def test_task_end_work_after_the_last_task_only_when_asked(consolidate, tmp_path, monkeypatch):
    """The Fisher after the last task protects nothing later: skipped unless the state is wanted."""
    from retentive.config import compose_config
    from retentive.runner import run
    from retentive.strategies import EWC

    tasks: list[int] = []
    original = EWC.compute_importance
    monkeypatch.setattr(EWC, "compute_importance",
                        lambda self, net, task, *a: tasks.append(task) or original(self, net, task, *a))
    run(compose_config(["dataset=split_digits", "strategy=ewc", "logger=none", "callbacks=none",
                        f"schedule.consolidate_last_task={str(consolidate).lower()}"], tmp_path), tmp_path)
    assert tasks == ([0, 1, 2, 3, 4] if consolidate else [0, 1, 2, 3])
