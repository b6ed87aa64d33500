"""A regular (non-editable) `pip install .` finds conf/ and trains from any directory."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.conftest import needs_mnist

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@needs_mnist
def test_a_non_editable_install_runs_an_experiment_from_another_folder(tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    # the fresh venv sees the dependencies (torch, lightning, ...) of the test's environment through a .pth
    # file, but not its editable retentive: .pth files are only read in the venv's own site dir
    fresh_site = Path(subprocess.check_output([str(python), "-c", "import site; print(site.getsitepackages()[0])"],
                                              text=True).strip())
    (fresh_site / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
                   check=True, capture_output=True, timeout=600)
    subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "-q", *map(str, wheels.glob("*.whl"))],
                   check=True, capture_output=True, timeout=600)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run_dir = elsewhere / "run"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([str(env_dir / "bin" / "retentive-train"), "experiment=vdv2019_split_task_naive",
                           "dataset.train_samples_per_task=300", "dataset.test_samples_per_task=200",
                           "schedule.steps_per_task=5", "logger=none", "callbacks=none", f"hydra.run.dir={run_dir}"],
                          cwd=elsewhere, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    located = subprocess.check_output([str(python), "-c", "import retentive; print(retentive.__file__)"],
                                      cwd=elsewhere, text=True, env=env).strip()
    assert str(env_dir) in located and "src/retentive" not in located  # the installed copy, not the checkout
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "complete" and results["tasks_completed"] == 5
    bad = subprocess.run([str(env_dir / "bin" / "retentive-train"), "seed=abc"], cwd=elsewhere, capture_output=True,
                         text=True, env=env, timeout=600)
    assert bad.returncode == 2 and bad.stderr.strip() == "error: seed: 'abc' must be an integer >= 0"


def test_conf_is_found_through_the_package(tmp_path):
    from retentive.config import CONF_DIR

    assert (CONF_DIR / "train.yaml").exists() and (ROOT / "conf").resolve() == CONF_DIR
    assert sys.modules["retentive.config"].__file__ is not None
