"""Importance strategies inside real training: Ω sanity, trackers move, EWC/SI beat naive."""

from __future__ import annotations

from functools import partial

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, RandomSampler

from retentive.data import SplitDigits, SplitMNIST, TaskStream, collate_batch
from retentive.errors import ConfigError
from retentive.models import ContinualNet, mlp_backbone
from retentive.module import ContinualModule
from retentive.strategies import (
    EWC,
    L2,
    MAS,
    SI,
    MomentumReversals,
    Naive,
    OnlineEWC,
    RandomImportance,
    SignFlips,
    Strategy,
    WeightChange,
    WeightMagnitude,
)
from tests.conftest import needs_mnist


def run_sequence(stream: TaskStream, strategy: Strategy, steps: int, hidden=(64, 64), lr: float = 1e-3,
                 tasks: int | None = None, seed: int = 0) -> tuple[ContinualModule, list[list[float]]]:
    """Train task after task the way the runner does; returns the module and R[i][j] (test acc)."""
    L.seed_everything(seed, verbose=False)
    body, width = mlp_backbone(stream.input_shape, hidden)
    net = ContinualNet(body, width, stream.head_sizes, stream.multihead)
    module = ContinualModule(net, strategy, stream.num_tasks, partial(torch.optim.Adam, lr=lr))
    trainer = L.Trainer(max_epochs=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, accelerator="cpu", devices=1)
    strategy.setup(net)
    matrix = []
    for task in range(tasks or stream.num_tasks):
        module.current_task = task
        data = stream.train(task)
        loader = DataLoader(data, batch_size=32, sampler=RandomSampler(data, num_samples=steps * 32),
                            collate_fn=collate_batch)
        strategy.on_task_start(net, task)
        trainer.fit_loop.max_epochs = task + 1
        trainer.fit(module, loader)
        strategy.on_task_end(net, task, DataLoader(data, batch_size=64, collate_fn=collate_batch))
        matrix.append([accuracy(module.net, stream, j) for j in range(stream.num_tasks)])
    return module, matrix


@torch.no_grad()
def accuracy(net: ContinualNet, stream: TaskStream, task: int) -> float:
    net.eval()
    x, y, t = stream.test(task).__getitems__(list(range(len(stream.test(task)))))
    correct = (net(x, t).argmax(1) == y).float().mean().item()
    net.train()
    return correct


def forgetting(matrix: list[list[float]]) -> float:
    n = len(matrix)
    return sum(max(matrix[i][j] for i in range(j, n - 1)) - matrix[-1][j] for j in range(n - 1)) / (n - 1)


@pytest.fixture(scope="module")
def digits() -> SplitDigits:
    return SplitDigits(scenario="domain", seed=0)


IMPORTANCE_STRATEGIES = {
    "ewc_exact": lambda: EWC(fisher="exact"),
    "ewc_sampled": lambda: EWC(fisher="sampled"),
    "ewc_empirical": lambda: EWC(fisher="empirical"),
    "ewc_batched": lambda: EWC(fisher="batched"),
    "online_ewc": lambda: OnlineEWC(gamma=0.9),
    "si": lambda: SI(),
    "mas": lambda: MAS(),
    "sign_flips": lambda: SignFlips(),
    "momentum_reversals": lambda: MomentumReversals(),
    "weight_change": lambda: WeightChange(),
    "weight_magnitude": lambda: WeightMagnitude(),
    "random": lambda: RandomImportance(),
}


@pytest.fixture(scope="module")
def trained_importances(digits) -> dict[str, dict[str, torch.Tensor]]:
    """Ω of each strategy after 2 tasks of Split digits (Domain-IL, shared head protected too)."""
    out = {}
    for name, make in {**IMPORTANCE_STRATEGIES, "l2": lambda: L2()}.items():
        strategy = make()
        strategy.include_heads = True
        run_sequence(digits, strategy, steps=30, tasks=2)
        out[name] = strategy.last_importance
    return out


@pytest.mark.parametrize("name", list(IMPORTANCE_STRATEGIES))
def test_importance_is_finite_nonnegative_and_not_uniform(trained_importances, name: str) -> None:
    omega = trained_importances[name]
    l2 = trained_importances["l2"]
    assert set(omega) == set(l2) and any(n.startswith("heads.") for n in omega)
    flat = torch.cat([w.flatten() for w in omega.values()])
    assert torch.isfinite(flat).all() and (flat >= 0).all()
    assert flat.max() > 0
    # differs from L2's Ω = 1 even after rescaling: importances actually vary across parameters
    assert (flat / flat.max()).std() > 1e-3


def test_fisher_kinds_disagree_where_they_should(trained_importances) -> None:
    total = {k: sum(w.sum() for w in trained_importances[k].values()).item()
             for k in ("ewc_exact", "ewc_sampled", "ewc_empirical", "ewc_batched")}
    # the squared batch-mean gradient underestimates the Fisher (Σ of squares > square of Σ)
    assert total["ewc_batched"] < 0.5 * total["ewc_empirical"]
    # sampling one label per example is an unbiased estimate of the exact expectation
    assert total["ewc_sampled"] == pytest.approx(total["ewc_exact"], rel=0.5)


@pytest.mark.parametrize("make", [SignFlips, MomentumReversals, WeightChange, SI], ids=lambda c: c.__name__)
def test_tracker_importances_change_with_training(digits, make) -> None:
    short, long = make(), make()
    run_sequence(digits, short, steps=2, tasks=1)
    run_sequence(digits, long, steps=40, tasks=1)
    for name in long.last_importance:
        assert not torch.equal(short.last_importance[name], long.last_importance[name]), name
    if make in (SignFlips, MomentumReversals):  # more steps, more reversals: Ω = 1/(1+count) drops
        mean_short = torch.cat([w.flatten() for w in short.last_importance.values()]).mean()
        mean_long = torch.cat([w.flatten() for w in long.last_importance.values()]).mean()
        assert mean_long < mean_short < 1.0
    if make is WeightChange:  # path length grows with the number of steps
        assert sum(w.sum() for w in long.last_importance.values()) > 5 * sum(
            w.sum() for w in short.last_importance.values())


def test_importances_and_anchors_are_snapshots(digits) -> None:
    strategy = WeightChange()
    module, _ = run_sequence(digits, strategy, steps=10, tasks=1)
    omega = {n: w.clone() for n, w in strategy.last_importance.items()}
    anchors = {n: a.clone() for n, a in strategy.consolidated.anchor.items()}
    with torch.no_grad():
        for p in module.net.parameters():
            p.add_(1.0)
    strategy.on_train_batch_end(module.net, None, None)  # trackers keep running; stored Ω / anchors must not move
    for name in omega:
        assert torch.equal(strategy.last_importance[name], omega[name])
        assert torch.equal(strategy.consolidated.anchor[name], anchors[name])
    assert strategy.penalty(module.net).item() > 0


def test_penalty_is_half_lambda_times_weighted_distance(digits) -> None:
    strategy = L2(lambda_=3.0)
    module, _ = run_sequence(digits, strategy, steps=5, tasks=1)
    anchors = {n: p.detach().clone() for n, p in strategy.protected(module.net).items()}
    with torch.no_grad():
        module.net.backbone[1].weight.add_(0.5)
    expected = 0.5 * 3.0 * 0.25 * module.net.backbone[1].weight.numel()
    assert strategy.penalty(module.net).item() == pytest.approx(expected, rel=1e-4)
    assert set(anchors) == {n for n, _ in module.net.named_parameters() if n.startswith("backbone.")}


def test_setup_rejects_a_model_with_nothing_to_protect() -> None:
    net = ContinualNet(nn.Sequential(nn.Flatten()), 64, [2], False)
    module = ContinualModule(net, EWC(), 1, partial(torch.optim.Adam, lr=1e-3))
    with pytest.raises(ConfigError, match="strategy.include_heads: EWC found no trainable backbone parameters"):
        module.strategy.setup(module.net)
    EWC(include_heads=True).setup(module.net)  # the head can be protected instead


@pytest.mark.slow
@needs_mnist
def test_ewc_and_si_forget_less_than_naive_on_split_mnist_task_il() -> None:
    stream = SplitMNIST(scenario="task", train_samples_per_task=2000,
                        test_samples_per_task=1000, seed=0)
    results = {}
    for name, strategy in {"naive": Naive(), "ewc": EWC(lambda_=1e4, include_heads=True),
                           "si": SI(lambda_=20.0, include_heads=True)}.items():
        _, matrix = run_sequence(stream, strategy, steps=100, hidden=(100, 100), lr=1e-3, tasks=3)
        results[name] = forgetting(matrix)
    assert results["naive"] > 0.02, results  # there is forgetting to prevent
    assert results["ewc"] < 0.5 * results["naive"], results
    assert results["si"] < 0.5 * results["naive"], results
