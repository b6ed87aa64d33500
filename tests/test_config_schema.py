"""Config mistakes are caught by the schema before torch is imported: one line, exit 2, no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from retentive.config import compose_config
from retentive.errors import ConfigError
from retentive.schema import check_config
from retentive.schema.preflight import preflight

# each of these used to end in a Python traceback, some only after training had started
MISTAKES = [
    (["seed=abc"], "seed: 'abc' must be an integer >= 0"),
    (["loader.num_workers=-1"], "loader.num_workers: -1 must be an integer >= 0"),
    (["model.backbone.dropout=1.5"], "model.backbone.dropout: 1.5 must be a number >= 0 and < 1"),
    (["trainer.precision=17"], "trainer.precision: 17 must be one of 64, 64-true, 32, 32-true"),
    (["trainer=ddp", "trainer.devices=0"], "trainer.devices: 0 must be auto or an integer >= 1"),
    (["model.optimizer.lr=-1"], "model.optimizer.lr: -1 must be a number > 0"),
    (["model.optimizer.lr=abc"], "model.optimizer.lr: 'abc' must be a number > 0"),
    (["dataset.train_samples_per_task=0"], "dataset.train_samples_per_task: 0 must be null or an integer >= 1"),
    (["trainer.val_check_interval=0"], "trainer.val_check_interval: 0 must be a fraction of an epoch"),
    (["evaluation.max_samples_per_task=0"], "evaluation.max_samples_per_task: 0 must be null or an integer >= 1"),
    (["strategy=ewc", "strategy.lambda_=-1"], "strategy.lambda_: -1 must be a number >= 0"),
    (["dataset.scenario=klass"], "dataset.scenario: 'klass' must be one of task, domain, class"),
    (["strategy=ewc", "strategy.lamda=3"], "strategy.lamda: is not a config key (did you mean strategy.lambda_"),
    (["model.optimizer.lrr=0.1"], "model.optimizer.lrr: is not a config key (did you mean model.optimizer.lr"),
    (["-m", "seed=0,1", "loader.batch_size=64,0"], "loader.batch_size: 0 must be an integer >= 1"),
]


@pytest.mark.parametrize(("args", "line"), MISTAKES, ids=[" ".join(a) for a, _ in MISTAKES])
def test_a_config_mistake_is_one_line_with_exit_code_2(args, line):
    result = subprocess.run([sys.executable, "-m", "retentive.train", *args, "hydra.run.dir=/tmp/never-made"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [x for x in result.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {line}"), result.stderr


def test_the_schema_check_runs_without_importing_torch():
    code = ("import sys\nfrom retentive.schema.preflight import preflight\nfrom retentive.errors import ConfigError\n"
            "try:\n    preflight(['seed=abc'])\nexcept ConfigError as e:\n    print(e)\nprint('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.splitlines() == ["seed: 'abc' must be an integer >= 0", "False"]


def test_valid_configs_pass_the_schema():
    for overrides in ([], ["model=cnn", "trainer.precision=bf16-mixed"], ["experiment=vdv2019_permuted_ewc"],
                      ["trainer.val_check_interval=0.25"], ["trainer.val_check_interval=50"], ["strategy=derpp"]):
        check_config(compose_config(overrides, "/tmp/x"))
    preflight(["-m", "strategy=naive,ewc", "seed=0,1"])


def test_the_python_api_checks_the_schema_too():
    with pytest.raises(ConfigError, match="loader.batch_size: 0 must be an integer >= 1"):
        check_config(compose_config(["loader.batch_size=0"], "/tmp/x"))


def test_a_lambda_search_optimises_the_validation_split_not_test(tmp_path):
    """Optuna's objective is what the run returns: `optimized_metric`, by default val_ACC."""
    import json

    import yaml

    sweep = tmp_path / "sweep"
    result = subprocess.run(
        [sys.executable, "-m", "retentive.train", "-m", "+hparams_search=lambda_optuna", "strategy=ewc",
         "dataset=split_digits", "hydra.sweeper.n_trials=2", "logger=none", "callbacks=none",
         f"hydra.sweep.dir={sweep}"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())["best_value"]
    runs = [json.loads(p.read_text()) for p in sweep.glob("*/results.json")]
    assert len(runs) == 2
    assert best == pytest.approx(max(r["val_ACC"] for r in runs))
    assert all(0 < r["val_ACC"] <= 1 and r["val_ACC"] != r["ACC"] for r in runs)


@pytest.mark.parametrize(("args", "line"), [
    (["dataset.scenario=class", "model.heads=multi"], "error: model.heads: 'multi' needs task ids at test time"),
    (["schedule.steps_per_task=2", "schedule.epochs_per_task=4"], "error: schedule.epochs_per_task: 4 evaluation"),
    (["strategy=er", "strategy.buffer_mode=class_balanced", "dataset.scenario=domain"],
     "error: strategy.buffer_mode: class_balanced in Domain-IL keeps the first task's samples"),
    (["strategy=er", "strategy.buffer_mode=class_balanced", "dataset.scenario=task"],
     "error: strategy.buffer_mode: class_balanced in Task-IL keeps the first task's samples"),
    (["trainer=gpu"], "error: trainer.accelerator: 'gpu' asked for, but this machine has no NVIDIA GPU"),
])
def test_impossible_combinations_are_one_line_before_torch(args, line):
    import os

    if line.startswith("error: trainer.accelerator") and (os.path.exists("/dev/nvidiactl")
                                                          or os.path.exists("/proc/driver/nvidia")):
        pytest.skip("this machine has an NVIDIA GPU")
    code = ("import sys\nfrom retentive.train import cli\nsys.argv = ['train', *sys.argv[1:]]\ntry:\n    cli()\n"
            "finally:\n    print('torch' in sys.modules, file=sys.stdout)")
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.strip().startswith(line), result.stderr
    assert result.stdout.strip() == "False"
