"""A run survives any kill: resume equals the uninterrupted run, signals stop it with a named status,
a finished run is never overwritten, readers never see a partial results file."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from retentive.config import compose_config
from retentive.runner import run
from tests.conftest import ROOT

DIGITS = ["dataset=split_digits", "dataset.scenario=class", "loader.batch_size=16", "schedule.epochs_per_task=2",
          "logger=none", "callbacks=none"]

# A real SIGKILL at a chosen moment: the run kills itself after batch `b` of epoch `e` of task `k`.
KILL_AT = """
import os, signal, sys
import lightning as L
from retentive.config import compose_config
from retentive.runner import ContinualRun
out, task, epoch, batch, overrides = sys.argv[1], *map(int, sys.argv[2:5]), sys.argv[5:]

class KillAt(L.Callback):
    def on_train_batch_end(self, trainer, module, outputs, b, i):
        epoch_in_task = trainer.current_epoch - task * 2
        if module.current_task == task and epoch_in_task == epoch and i == batch:
            os.kill(os.getpid(), signal.SIGKILL)

run = ContinualRun(compose_config(overrides, out), out)
run.trainer.callbacks.append(KillAt())
run.fit()
"""


def env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "PYTHONPATH": str(ROOT / "src")}


def train(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "retentive.train", *args], cwd=ROOT, capture_output=True,
                          text=True, env=env(), timeout=600, **kwargs)


def rows(run_dir: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((run_dir / "metrics.csv").read_text().splitlines()))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("uninterrupted")
    run(compose_config(DIGITS, out), out)
    return out


@pytest.mark.parametrize("task, epoch, batch", [(1, 1, 0), (2, 0, 7)], ids=["task2-after-an-epoch", "mid-epoch"])
def test_kill_9_then_resume_equals_the_uninterrupted_run(uninterrupted, tmp_path, task, epoch, batch):
    killed = subprocess.run([sys.executable, "-c", KILL_AT, str(tmp_path), str(task), str(epoch), str(batch), *DIGITS],
                            cwd=ROOT, capture_output=True, text=True, env=env(), timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    before = json.loads((tmp_path / "results.json").read_text())
    assert before["status"] == "running" and before["tasks_completed"] == task  # died inside task `task`
    resumed = train(*DIGITS, f"resume={tmp_path}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming at task {task}" in resumed.stdout + resumed.stderr
    expected, got = (json.loads((d / "results.json").read_text()) for d in (uninterrupted, tmp_path))
    assert got["status"] == "complete"
    assert got["accuracy_matrix"] == expected["accuracy_matrix"]
    assert got["random_init_accuracy"] == expected["random_init_accuracy"]
    assert rows(tmp_path) == rows(uninterrupted)  # every evaluation, step and epoch number, bit for bit


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_stops_with_a_named_status_and_the_run_resumes(tmp_path, sig, code):
    slow = [*DIGITS, "schedule.epochs_per_task=12", f"hydra.run.dir={tmp_path / 'run'}"]
    process = subprocess.Popen([sys.executable, "-m", "retentive.train", *slow], cwd=ROOT, env=env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "run" / "metrics.csv"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:  # wait until task 1 has begun
        if metrics.exists() and any(r["trained_task"] == "1" for r in rows(tmp_path / "run")):
            break
        time.sleep(0.05)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == code, stderr[-2000:]
    assert "Traceback" not in stderr and f"interrupted by {sig.name}" in stderr
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["status"].startswith("interrupted at task ") and results["status"].endswith(f"({sig.name})")
    if sig == signal.SIGTERM:  # only `resume=<dir>`: the config comes from the run dir's .hydra/
        resumed = train(f"resume={tmp_path / 'run'}")
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        done = json.loads((tmp_path / "run" / "results.json").read_text())
        reference = tmp_path / "reference"
        run(compose_config(slow[:-1], reference), reference)
        assert done["status"] == "complete"
        assert done["accuracy_matrix"] == json.loads((reference / "results.json").read_text())["accuracy_matrix"]
        assert rows(tmp_path / "run") == rows(reference)


def test_a_run_dir_that_holds_a_run_is_refused(uninterrupted):
    before = (uninterrupted / "results.json").read_text()
    again = train(*DIGITS, f"hydra.run.dir={uninterrupted}")
    assert again.returncode == 2 and "Traceback" not in again.stderr
    assert f"error: hydra.run.dir: {uninterrupted} already holds a run" in again.stderr
    assert f"resume={uninterrupted}" in again.stderr
    assert (uninterrupted / "results.json").read_text() == before


def test_resume_with_other_settings_or_no_checkpoint_is_one_line(uninterrupted, tmp_path):
    changed = train(*DIGITS, "loader.batch_size=8", f"resume={uninterrupted}")
    assert changed.returncode == 2 and "Traceback" not in changed.stderr
    assert "error: loader.batch_size: is 8 now but 16 in the run being resumed" in changed.stderr
    empty = train(f"resume={tmp_path}")
    assert empty.returncode == 2 and "has no checkpoints/last.pt" in empty.stderr and "Traceback" not in empty.stderr


def test_a_concurrent_reader_never_sees_a_partial_results_file(tmp_path):
    from retentive.callbacks.results import ContinualResults

    results = ContinualResults(tmp_path, 3, ["a", "b", "c"], {"name": "x"})
    results.history = [{"trained_task": 0, "epoch": i, "step": i, "split": "val", "eval_task": 0,
                        "accuracy": 0.5, "loss": 1.0} for i in range(20000)]
    results.write()
    stop, reads, failures = threading.Event(), [0], []

    def read() -> None:
        while not stop.is_set():
            for name in ("results.json", "metrics.csv"):
                text = (tmp_path / name).read_text()
                if name == "results.json":
                    try:
                        json.loads(text)
                    except ValueError as error:
                        failures.append(str(error))
                elif text.count("\n") != 20001:
                    failures.append(f"metrics.csv with {text.count(chr(10))} lines")
            reads[0] += 1

    reader = threading.Thread(target=read)
    reader.start()
    for _ in range(30):
        results.write()
    stop.set()
    reader.join()
    assert reads[0] > 10 and failures == []
    assert not list(tmp_path.glob(".*.tmp"))  # no temp files left behind


def test_lightning_csv_logger_keeps_the_final_scores(tmp_path):
    summary, _ = run(compose_config([*DIGITS[:-2], "callbacks=none"], tmp_path), tmp_path), tmp_path
    logged = list(csv.DictReader((tmp_path / "csv" / "metrics.csv").read_text().splitlines()))
    final = [r for r in logged if r.get("cl/ACC")]
    assert len(final) == 5  # one per task end, the last one included
    assert float(final[-1]["cl/ACC"]) == pytest.approx(summary["ACC"], abs=1e-6)


def test_evaluate_cli_retests_a_checkpoint_and_rejects_a_bad_path(uninterrupted, tmp_path):
    ckpt = uninterrupted / "checkpoints" / "last.pt"
    done = subprocess.run([sys.executable, "-m", "retentive.evaluate", f"ckpt_path={ckpt}"], cwd=ROOT,
                          capture_output=True, text=True, env=env(), timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((uninterrupted / "evaluation_last.json").read_text())
    expected = json.loads((uninterrupted / "results.json").read_text())["accuracy_matrix"][-1]
    assert report["accuracy"] == pytest.approx(expected, abs=1e-6)
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint")
    failed = subprocess.run([sys.executable, "-m", "retentive.evaluate", f"ckpt_path={bad}"], cwd=ROOT,
                            capture_output=True, text=True, env=env(), timeout=600)
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert failed.stderr.startswith(f"error: ckpt_path: {bad} is not a readable checkpoint")


def test_a_run_killed_before_its_first_epoch_ended_resumes_from_the_start(uninterrupted, tmp_path):
    killed = subprocess.run([sys.executable, "-c", KILL_AT, str(tmp_path), "0", "0", "3", *DIGITS],
                            cwd=ROOT, capture_output=True, text=True, env=env(), timeout=600)
    assert killed.returncode == -signal.SIGKILL
    resumed = train(*DIGITS, f"resume={tmp_path}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert rows(tmp_path) == rows(uninterrupted)


def test_a_signal_during_a_write_takes_effect_after_the_file_is_in_place(tmp_path):
    from retentive.resume.signals import RunInterrupted, interrupt_on_signals
    from retentive.storage.atomic import atomic_write

    def write(handle) -> None:
        handle.write(b"first half ")
        os.kill(os.getpid(), signal.SIGTERM)  # arrives in the middle of the write
        handle.write(b"second half")

    with interrupt_on_signals(), pytest.raises(RunInterrupted) as stop:
        atomic_write(tmp_path / "file.txt", write)
    assert stop.value.signal_name == "SIGTERM" and stop.value.exit_code == 143
    assert (tmp_path / "file.txt").read_bytes() == b"first half second half"
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_run_started_before_a_config_key_existed_still_resumes_but_a_changed_value_does_not(tmp_path):
    from omegaconf import OmegaConf

    from retentive.errors import ConfigError
    from retentive.storage.run_dir import check_resumable_config

    current = compose_config(["dataset=split_digits", "strategy=er"], tmp_path)
    saved = OmegaConf.create(OmegaConf.to_container(current, resolve=True))
    del saved.model["init"], saved.model["loss_units"], saved.strategy["fill"]  # keys added by later versions
    check_resumable_config(saved, current)  # their defaults are the old behaviour: resumable
    changed = compose_config(["dataset=split_digits", "strategy=er", "strategy.buffer_size=7"], tmp_path)
    with pytest.raises(ConfigError, match="strategy.buffer_size"):
        check_resumable_config(saved, changed)
    removed = OmegaConf.create(OmegaConf.to_container(current, resolve=True))
    del removed.strategy["replay_weight"]  # a key the run had and this version lacks is still a difference
    with pytest.raises(ConfigError, match="strategy.replay_weight"):
        check_resumable_config(saved, removed)
