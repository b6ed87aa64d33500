"""The command line as a user runs it: outputs, loggers, and one-line errors for mistakes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, needs_mnist


def train(*overrides: str, tmp_path: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "retentive.train", *overrides, f"paths.log_dir={tmp_path}"]
    full_env = {**os.environ, "WANDB_MODE": "offline", **(env or {})}
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=full_env, timeout=600)


def test_cli_run_writes_everything_and_says_where(tmp_path):
    done = train("dataset=split_digits", "schedule.epochs_per_task=2", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    run_dirs = [p.parent for p in tmp_path.glob("*/*/results.json")]  # outputs/<date>/<time>/
    assert len(run_dirs) == 1
    run_dir = run_dirs[0]
    assert str(run_dir / "results.json") in done.stdout
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "complete" and len(results["accuracy_matrix"]) == 5
    for name in ("metrics.csv", "accuracy_curves.png", "accuracy_matrix.png", ".hydra/config.yaml"):
        assert (run_dir / name).exists(), name
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert "Traceback" not in done.stderr


def test_wandb_logger_runs_offline(tmp_path):
    done = train("dataset=split_digits", "logger=wandb", "callbacks=none", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert list(tmp_path.glob("*/*/wandb/offline-run-*"))


@pytest.mark.parametrize(
    "overrides, env, expected",
    [
        (["dataset=imagenet"], {}, "dataset: unknown option 'imagenet' (choose one of: "),
        (["dataset=split_digits", "dataset.scenario=classes"], {}, "dataset.scenario: 'classes' must be one of task, domain, class"),
        (["dataset=split_digits", "dataset.scenario=class", "model.heads=multi"], {}, "model.heads: 'multi' needs task ids"),
        (["dataset=split_mnist"], {"DATA_DIR": "/no/such/dir", "RETENTIVE_OFFLINE": "1"}, "set DATA_DIR"),
        (["dataset=split_digits", "loader.batch_size=0"], {}, "loader.batch_size: 0 must be an integer >= 1"),
        # settings for a callback the chosen group lacks (an experiment's early stopping, then callbacks=default)
        (["dataset=split_digits", "callbacks=default", "+callbacks.early_stopping.patience=0"], {},
         "callbacks.early_stopping: has ['patience'] but no _target_"),
    ],
)
def test_user_mistakes_fail_with_one_line(tmp_path, overrides, env, expected):
    done = train(*overrides, "logger=none", tmp_path=tmp_path, env=env)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    error_lines = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1 and expected in error_lines[0]
    assert not list(tmp_path.glob("*/*/results.json"))  # failed before any training


def test_nan_loss_stops_with_one_line_and_keeps_results(tmp_path):
    done = train("dataset=split_digits", "logger=none", "model.optimizer._target_=torch.optim.SGD",
                 "model.optimizer.lr=1e8", tmp_path=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "error: loss: non-finite loss" in done.stderr
    results = json.loads(next(tmp_path.glob("*/*/results.json")).read_text())
    assert results["status"].startswith("failed at task")
    assert results["tasks_completed"] >= 1 and len(results["accuracy_matrix"]) == results["tasks_completed"]


def test_ddp_on_two_cpu_processes_equals_one_process(tmp_path):
    """`loader.batch_size` is the global batch: 2 gloo processes take the same steps as one."""
    import csv

    common = ["dataset=split_digits", "dataset.scenario=task", "loader.batch_size=32", "trainer.accelerator=cpu",
              "schedule.epochs_per_task=2", "logger=none", "callbacks=none"]
    single = train(*common, "hydra.run.dir=" + str(tmp_path / "one"), tmp_path=tmp_path)
    ddp = train(*common, "trainer=ddp", "hydra.run.dir=" + str(tmp_path / "two"), tmp_path=tmp_path,
                env={"OMP_NUM_THREADS": "1"})
    assert single.returncode == 0 and ddp.returncode == 0, ddp.stderr[-3000:]
    assert ddp.stdout.count("results: ") == 1  # rank zero reports
    one, two = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("one", "two"))
    assert two["status"] == "complete" and min(two["accuracy_matrix"][i][i] for i in range(5)) > 0.8
    for row_one, row_two in zip(one["accuracy_matrix"], two["accuracy_matrix"], strict=True):
        assert row_two == pytest.approx(row_one, abs=1e-4)
    curves = [list(csv.DictReader((tmp_path / d / "metrics.csv").read_text().splitlines())) for d in ("one", "two")]
    assert [(r["step"], r["eval_task"]) for r in curves[0]] == [(r["step"], r["eval_task"]) for r in curves[1]]
    assert [float(r["accuracy"]) for r in curves[1]] == pytest.approx([float(r["accuracy"]) for r in curves[0]],
                                                                       abs=1e-4)


@needs_mnist
def test_explanation_that_cannot_explain_the_model_fails_before_training(run_config, tmp_path):
    from retentive.errors import ConfigError

    with pytest.raises(ConfigError, match=r"explanation: CAMLoss needs a model with conv \(use model=cnn\)"):
        run_config("dataset=decoy_mnist", "dataset.train_samples_per_task=200", "explanation=camloss", "model=mlp")
    assert not (tmp_path / "results.json").exists()  # nothing trained
