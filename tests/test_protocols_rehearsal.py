"""The rehearsal papers' own protocols: mammoth's Task-IL by masking a Class-IL net
(`evaluation.task_masked`), A-GEM's end-of-task memory fill, and the reproduction experiments."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from retentive.callbacks.results import ContinualResults
from retentive.config import compose_config
from retentive.data.loaders import plain_loader
from retentive.runner import ContinualRun
from retentive.schema import check_config
from retentive.strategies.agem import AGEM

EXPERIMENTS = Path(__file__).resolve().parents[1] / "conf" / "experiment"
NEW = sorted([p.stem for p in EXPERIMENTS.glob("buzzega2020_seqmnist*.yaml")]
             + [f"vdv2019_split_{s}_lwf" for s in ("task", "domain", "class")] + ["vdv2019_split_class_icarl"])
BASE = ["dataset=split_digits", "dataset.scenario=class", "loader.batch_size=16", "logger=none", "callbacks=none",
        "evaluation.task_masked=true"]


@pytest.fixture(scope="module")
def masked_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[ContinualRun, dict]:
    out = tmp_path_factory.mktemp("masked")
    run = ContinualRun(compose_config([*BASE, "strategy=naive", "schedule.epochs_per_task=2"], out), out)
    run.fit()
    return run, json.loads((out / "results.json").read_text())


def test_masked_accuracy_is_the_hand_computed_task_il_accuracy(masked_run) -> None:
    run, results = masked_run
    net = run.module.net.eval()
    final = results["accuracy_matrix_task_masked"][-1]
    for task in range(run.stream.num_tasks):
        batch = run.stream.test(task).batch()
        with torch.no_grad():
            logits = net(batch.x, batch.t)
        own = torch.unique(batch.y)  # Class-IL labels of this task = its output units
        assert own.tolist() == [2 * task, 2 * task + 1]
        masked = torch.full_like(logits, float("-inf"))
        masked[:, own] = logits[:, own]
        expected = (masked.argmax(dim=1) == batch.y).float().mean().item()
        assert final[task] == pytest.approx(expected, abs=1e-6)
        unmasked = (logits.argmax(dim=1) == batch.y).float().mean().item()
        assert results["accuracy_matrix"][-1][task] == pytest.approx(unmasked, abs=1e-6)


def test_masked_matrix_in_results_and_never_below_class_il(masked_run) -> None:
    _, results = masked_run
    plain, masked = results["accuracy_matrix"], results["accuracy_matrix_task_masked"]
    assert len(masked) == len(plain) == 5 and all(len(row) == 5 for row in masked)
    for plain_row, masked_row in zip(plain, masked, strict=True):
        assert all(m >= p - 1e-9 for p, m in zip(plain_row, masked_row, strict=True))
    # naive fine-tuning forgets old classes under argmax over all 10, but not within each task's pair
    assert results["ACC_task_masked"] > results["ACC"] + 0.3
    assert results["ACC_task_masked"] == pytest.approx(sum(masked[-1]) / 5)
    assert results["BWT_task_masked"] == pytest.approx(sum(masked[-1][j] - masked[j][j] for j in range(4)) / 4)
    assert len(results["random_init_accuracy_task_masked"]) == 5


def test_evaluate_retests_the_masked_accuracy_of_a_checkpoint(masked_run) -> None:
    from retentive.evaluate import evaluate_checkpoint

    run, results = masked_run
    report = evaluate_checkpoint(run.output_dir / "checkpoints" / "last.pt")
    assert report["accuracy_task_masked"] == pytest.approx(results["accuracy_matrix_task_masked"][-1], abs=1e-6)
    assert report["accuracy"] == pytest.approx(results["accuracy_matrix"][-1], abs=1e-6)
    assert report["ACC_seen_task_masked"] == pytest.approx(results["ACC_task_masked"], abs=1e-6)


def test_masked_matrix_survives_a_checkpoint_round_trip(masked_run, tmp_path: Path) -> None:
    import warnings

    run, results = masked_run
    copy = ContinualResults(tmp_path, 5, run.stream.task_names, {})
    copy.load_state_dict(run.results.state_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # restored rows count as updates: no "compute before update" warning
        assert copy.matrix.compute()["ACC"] == pytest.approx(results["ACC"])
    assert copy.summary()["accuracy_matrix_task_masked"] == results["accuracy_matrix_task_masked"]


def test_off_by_default_writes_no_masked_keys(tmp_path: Path) -> None:
    overrides = [o for o in BASE if not o.startswith("evaluation")] + ["dataset.train_samples_per_task=64"]
    results = ContinualRun(compose_config(overrides, tmp_path), tmp_path).fit()
    assert "ACC" in results and not any("task_masked" in key for key in results)


def test_agem_task_end_fill_stores_its_share_of_each_task(tmp_path: Path) -> None:
    cfg = compose_config(["dataset=split_digits"], tmp_path)
    run = ContinualRun(cfg, tmp_path)
    stream = run.stream
    agem = AGEM(buffer_size=50, memory_batch_size=8, task_end_samples=50 // stream.num_tasks)
    for task in range(3):
        agem.on_task_end(run.module.net, task, plain_loader(stream.train(task), 16, 0))
        stored = agem.buffer.stored()
        assert len(agem.buffer) == 10 * (task + 1)
        for earlier in range(task + 1):  # each finished task keeps exactly its 10, drawn from its own data
            assert int(((stored.y // 2) == earlier).sum()) == 10
    first = stored.select(torch.nonzero(stored.y // 2 == 0).squeeze(1))
    flat = stream.train(0).batch().x.flatten(1)
    assert all((flat == x.flatten()).all(dim=1).any() for x in first.x)  # real samples of task 0
    assert len({tuple(x.flatten().tolist()) for x in first.x}) == 10  # without replacement


@pytest.mark.parametrize("experiment", NEW)
def test_new_experiments_compose_and_pass_the_schema(experiment: str, tmp_path: Path) -> None:
    cfg = compose_config([f"experiment={experiment}"], tmp_path)
    check_config(cfg)
    if experiment.startswith("buzzega2020"):
        assert cfg.model.optimizer._target_ == "torch.optim.SGD" and cfg.loader.batch_size == 10
        assert list(cfg.model.backbone.hidden) == [100, 100] and cfg.evaluation.task_masked
        assert not cfg.schedule.reset_optimizer and cfg.dataset.scenario == "class"


def test_loss_units_seen_leaves_unseen_classes_out_of_the_task_loss(tmp_path: Path) -> None:
    import torch.nn.functional as F

    cfg = compose_config([*BASE[:-1], "model.loss_units=seen", "dataset.train_samples_per_task=64"], tmp_path)
    run = ContinualRun(cfg, tmp_path)
    run.module.current_task = 1
    # the runner sets the units at every task start; here by hand, as at task 1
    run.module.loss_units = sorted({u for units in run.stream.task_output_units[:2] for u in units})
    assert run.module.loss_units == [0, 1, 2, 3]
    batch = run.stream.train(1).batch(list(range(32)))
    logits = run.module.net(batch.x, batch.t)
    loss = run.module.task_loss(logits, batch)
    assert loss.item() == pytest.approx(F.cross_entropy(logits[:, :4], batch.y).item(), rel=1e-6)
    loss.backward()
    head = run.module.net.heads[0].weight.grad
    assert head[4:].abs().sum() == 0 and head[:4].abs().sum() > 0  # classes of later tasks get no gradient
    results = run.fit()  # and a whole run trains with it
    assert results["accuracy_matrix"][0][0] > 0.9 and run.module.loss_units == list(range(10))
