"""The O(#params) consolidated penalty equals the per-task sum it replaces (value and gradient)."""

from __future__ import annotations

import pytest
import torch

from retentive.strategies.consolidation import Consolidation

SHAPES = {"w": (7, 5), "b": (7,)}


def _tasks(num_tasks: int, seed: int = 0) -> list[tuple[dict, dict]]:
    generator = torch.Generator().manual_seed(seed)
    tasks = []
    for _ in range(num_tasks):
        omega = {n: torch.rand(s, generator=generator) for n, s in SHAPES.items()}
        omega["w"][0] = 0.0  # rows no task cares about: anchor undefined, penalty must stay 0 there
        anchor = {n: torch.randn(s, generator=generator) for n, s in SHAPES.items()}
        tasks.append((omega, anchor))
    return tasks


def _per_task_sum(tasks: list[tuple[dict, dict]], theta: dict, gamma: float) -> torch.Tensor:
    n = len(tasks)
    return sum(
        gamma ** (n - 1 - k) * sum((omega[p] * (theta[p] - anchor[p]).square()).sum() for p in SHAPES)
        for k, (omega, anchor) in enumerate(tasks)
    )


@pytest.mark.parametrize("gamma", [1.0, 0.7])
def test_per_task_consolidation_matches_naive_sum(gamma: float) -> None:
    tasks = _tasks(4)
    consolidated = Consolidation("per_task", gamma)
    for omega, anchor in tasks:
        consolidated.add(omega, anchor)
    for trial in range(3):
        generator = torch.Generator().manual_seed(100 + trial)
        theta_a = {n: torch.randn(s, generator=generator, requires_grad=True) for n, s in SHAPES.items()}
        theta_b = {n: torch.randn(s, generator=generator, requires_grad=True) for n, s in SHAPES.items()}
        fast_a, slow_a = consolidated.penalty(theta_a), _per_task_sum(tasks, theta_a, gamma)
        fast_b, slow_b = consolidated.penalty(theta_b), _per_task_sum(tasks, theta_b, gamma)
        # same value (the constant is kept), hence the same differences between points
        assert fast_a.item() == pytest.approx(slow_a.item(), rel=1e-5)
        assert (fast_a - fast_b).item() == pytest.approx((slow_a - slow_b).item(), rel=1e-4, abs=1e-4)
        fast_grads = torch.autograd.grad(fast_a, list(theta_a.values()))
        slow_grads = torch.autograd.grad(slow_a, list(theta_a.values()))
        for fast, slow in zip(fast_grads, slow_grads, strict=True):
            torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-5)


def test_memory_does_not_grow_with_tasks() -> None:
    consolidated = Consolidation("per_task")
    for omega, anchor in _tasks(6):
        consolidated.add(omega, anchor)
        assert set(consolidated.importance) == set(SHAPES)
        assert all(consolidated.importance[n].shape == SHAPES[n] for n in SHAPES)


def test_online_mode_is_decayed_importance_at_latest_anchor() -> None:
    tasks = _tasks(3, seed=1)
    consolidated = Consolidation("online", gamma=0.5)
    for omega, anchor in tasks:
        consolidated.add(omega, anchor)
    expected = {n: 0.25 * tasks[0][0][n] + 0.5 * tasks[1][0][n] + tasks[2][0][n] for n in SHAPES}
    for n in SHAPES:
        torch.testing.assert_close(consolidated.importance[n], expected[n])
        torch.testing.assert_close(consolidated.anchor[n], tasks[2][1][n])
    theta = {n: torch.randn(s) for n, s in SHAPES.items()}
    value = sum((expected[n] * (theta[n] - tasks[2][1][n]).square()).sum() for n in SHAPES)
    assert consolidated.penalty(theta).item() == pytest.approx(value.item(), rel=1e-5)


def test_anchors_are_copies_not_live_references() -> None:
    consolidated = Consolidation("per_task")
    omega, anchor = _tasks(1)[0]
    consolidated.add(omega, anchor)
    before = consolidated.penalty(anchor).item()
    anchor["w"] += 1.0  # the "parameters" move on; the stored anchor must not
    omega["w"] += 5.0
    assert before == pytest.approx(0.0, abs=1e-6)
    assert consolidated.penalty(anchor).item() > 0.1
    assert consolidated.importance["w"].max().item() <= 1.0
