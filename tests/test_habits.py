"""Habits from the Hydra/Lightning world: debug presets, the config tree, single quiet log lines."""

from __future__ import annotations

import subprocess
import sys


def train(*args: str, tmp_path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "retentive.train", "dataset=split_digits", "logger=none", *args,
                           f"hydra.run.dir={tmp_path / 'run'}"], capture_output=True, text=True, timeout=600)


def test_debug_fast_prints_and_saves_the_config_tree_and_logs_each_line_once(tmp_path):
    done = train("debug=fast", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    tree = (tmp_path / "run" / "config_tree.txt").read_text()
    assert tree.startswith("config") and "train_samples_per_task: 256" in tree and "strategy" in tree
    assert "train_samples_per_task: 256" in done.stdout  # printed at the start too
    log = done.stdout + done.stderr
    assert "`Trainer.fit` stopped" not in log and "INFO: GPU available" not in log
    for task in range(1, 6):
        assert sum(f"task {task}/5 done" in line for line in log.splitlines()) == 1
    assert "debug-split_digits-naive" in (tmp_path / "run" / "results.json").read_text()


def test_debug_profile_reports_lightnings_profile(tmp_path):
    done = train("debug=profile", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Profiler Report" in done.stdout + done.stderr


def test_a_joblib_sweep_logs_every_line_once_without_known_warnings(tmp_path):
    done = subprocess.run([sys.executable, "-m", "retentive.train", "-m", "hydra/launcher=joblib",
                           "hydra.launcher.n_jobs=2", "dataset=split_digits", "debug=fast", "logger=none", "seed=0,1",
                           f"hydra.sweep.dir={tmp_path / 'sweep'}"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [x for x in (done.stdout + done.stderr).splitlines() if x.startswith("[")]
    assert len(lines) == len(set(lines)) and sum("task 5/5 done" in x for x in lines) == 2
    assert "deprecated" not in done.stdout + done.stderr
