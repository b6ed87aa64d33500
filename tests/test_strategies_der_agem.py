"""DER, DER++ and A-GEM: the logit MSE, the two replay draws, the gradient projection, checkpoints,
and end-to-end runs on Split MNIST."""

from __future__ import annotations

import io

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from retentive.config import compose_config
from retentive.data import SplitDigits
from retentive.data.batch import Batch
from retentive.models import ContinualNet, mlp_backbone
from retentive.strategies.agem import AGEM, project
from retentive.strategies.der import DER, DERpp, logit_mse
from tests.conftest import needs_mnist


def weights_only_copy(state: dict) -> dict:
    stream = io.BytesIO()
    torch.save(state, stream)
    stream.seek(0)
    return torch.load(stream, weights_only=True)


def net_for(stream: SplitDigits, seed: int = 0, head_sizes: list[int] | None = None) -> ContinualNet:
    torch.manual_seed(seed)
    body, width = mlp_backbone(stream.input_shape, (32,))
    return ContinualNet(body, width, head_sizes or stream.head_sizes, stream.multihead)


def perturb(net: nn.Module, seed: int = 1) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=generator))


def stream_through(strategy: DER, net: ContinualNet, stream: SplitDigits, tasks: range, chunk: int = 32) -> None:
    """Offer the tasks' samples as training steps would: each batch with the net's logits on it."""
    for task in tasks:
        data = stream.train(task)
        for start in range(0, 96, chunk):
            batch = data.batch(list(range(start, start + chunk)))
            strategy.on_train_batch_end(net, batch, net(batch.x, batch.t).detach())


# -- DER / DER++ ------------------------------------------------------------------------------
def test_logit_mse_is_mse_loss_without_padding_and_ignores_padded_units() -> None:
    current, stored = torch.randn(6, 4), torch.randn(6, 4)
    assert logit_mse(current, stored).item() == pytest.approx(F.mse_loss(current, stored).item(), rel=1e-6)
    current = current.clone().requires_grad_()
    padded_cur = torch.cat([current, torch.full((6, 2), float("-inf"))], 1)
    padded_old = torch.cat([stored, torch.full((6, 2), float("-inf"))], 1)
    loss = logit_mse(padded_cur, padded_old)
    loss.backward()
    assert loss.item() == pytest.approx(F.mse_loss(current, stored).item(), rel=1e-6)
    assert torch.isfinite(current.grad).all()


@pytest.mark.parametrize("scenario, heads", [("class", None), ("task", [2, 3, 2, 2, 2])])
def test_der_loss_is_zero_until_the_net_changes_then_alpha_times_the_mse_to_the_stored_logits(scenario, heads) -> None:
    stream = SplitDigits(scenario=scenario)
    net = net_for(stream, head_sizes=heads)  # task: heads 0, 2-4 padded with -inf to width 3
    old = net_for(stream, head_sizes=heads)
    old.load_state_dict(net.state_dict())
    der = DER(buffer_size=80, alpha=0.7, replay_batch_size=40, seed=3)
    stream_through(der, net, stream, range(3))
    batch = stream.train(3).batch(list(range(32)))
    assert len(der.buffer) == 80 and set(der.buffer.stored().t.tolist()) == {0, 1, 2}
    assert abs(der.loss(net, batch, net(batch.x, batch.t)).item()) < 1e-10  # the net is unchanged since storage
    perturb(net)
    twin = DER(buffer_size=80, alpha=0.7, replay_batch_size=40)
    twin.load_state_dict(der.state_dict())  # same samples, same generator state: the same draw
    replay, _ = twin.buffer.draw(40)
    now, then = net(replay.x, replay.t), old(replay.x, replay.t)
    expected = 0.7 * (now - then)[torch.isfinite(then)].pow(2).mean()  # against the logits at storage time
    loss = der.loss(net, batch, net(batch.x, batch.t))
    assert torch.isfinite(loss) and expected.item() > 0.01
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_derpp_adds_beta_ce_on_a_second_independent_draw() -> None:
    stream = SplitDigits(scenario="class")
    net, old = net_for(stream), net_for(stream)
    derpp = DERpp(buffer_size=60, alpha=0.3, beta=0.8, replay_batch_size=20, seed=1)
    stream_through(derpp, net, stream, range(2))
    perturb(net)
    twin = DERpp(buffer_size=60)
    twin.load_state_dict(derpp.state_dict())
    first, _ = twin.buffer.draw(20)
    second = twin.buffer.sample(20)
    expected = (0.3 * F.mse_loss(net(first.x), old(first.x))
                + 0.8 * F.cross_entropy(net(second.x), second.y))
    batch = stream.train(2).batch(list(range(20)))
    assert derpp.loss(net, batch, net(batch.x)).item() == pytest.approx(expected.item(), rel=1e-5)
    assert not torch.equal(first.index, second.index)
    no_ce = DERpp(buffer_size=60, alpha=0.3, beta=0.0, replay_batch_size=20)
    no_ce.load_state_dict(derpp.state_dict())
    only_mse = DER(buffer_size=60, alpha=0.3, replay_batch_size=20)
    only_mse.load_state_dict(derpp.state_dict())
    assert torch.equal(no_ce.loss(net, batch, net(batch.x)), only_mse.loss(net, batch, net(batch.x)))


# -- A-GEM --------------------------------------------------------------------------------------
def test_projection_removes_the_conflicting_component_and_leaves_agreeing_gradients_alone() -> None:
    generator = torch.Generator().manual_seed(0)
    params = [nn.Parameter(torch.zeros(5, 3)), nn.Parameter(torch.zeros(3)), nn.Parameter(torch.zeros(2))]
    ref = [torch.randn(p.shape, generator=generator) for p in params[:2]] + [torch.zeros(2)]  # an unused head
    noise = [torch.randn(p.shape, generator=generator) for p in params]
    flat = lambda ts: torch.cat([t.flatten() for t in ts])  # noqa: E731
    c = 2 * flat(noise).norm() / flat(ref).norm()  # g = noise - c·r has g·r < 0
    for p, n, r in zip(params, noise, ref, strict=True):
        p.grad = n - c * r
    before, r = flat([p.grad for p in params]), flat(ref)
    assert torch.dot(before, r) < 0 and project(params, ref)
    after = flat([p.grad for p in params])
    expected = before - torch.dot(before, r) / torch.dot(r, r) * r
    assert torch.allclose(after, expected, atol=1e-6) and abs(torch.dot(after, r)) < 1e-4
    assert torch.equal(params[2].grad, before[-2:])  # zero reference there: untouched
    for p, n, r in zip(params, noise, ref, strict=True):
        p.grad = n + c * r  # g·r > 0
    agreeing = [p.grad.clone() for p in params]
    assert not project(params, ref) and all(torch.equal(p.grad, a) for p, a in zip(params, agreeing, strict=True))


def test_projection_gives_an_unused_parameter_its_reference_component() -> None:
    used, unused = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(2))
    used.grad = torch.tensor([-1.0, 0.0])
    assert project([used, unused], [torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])])
    # g = (-1, 0, 0, 0), r = (1, 0, 0, 1): g̃ = g + r/2
    assert used.grad.tolist() == [-0.5, 0.0] and unused.grad.tolist() == [0.0, 0.5]


def test_agem_steps_through_the_hooks_equal_the_authors_two_backward_recipe() -> None:
    """Hooks (task loss backward, on_after_backward, step) vs mammoth's observe(): backward on the
    batch, store g; zero, backward on a memory batch, store g_ref; overwrite .grad with project(g)."""
    stream = SplitDigits(scenario="class")
    ours, theirs = net_for(stream), net_for(stream)
    agem = AGEM(buffer_size=60, memory_batch_size=24, seed=4)
    agem.on_task_end(ours, 0, [stream.train(0).batch()])
    memory = AGEM(buffer_size=60, memory_batch_size=24)
    memory.load_state_dict(agem.state_dict())  # the same draws
    opt_ours, opt_theirs = (torch.optim.SGD(n.parameters(), lr=0.5) for n in (ours, theirs))
    for step in range(6):
        batch = stream.train(step % 2).batch(list(range(16 * step, 16 * step + 16)))  # task 0 agrees with memory
        opt_ours.zero_grad()
        F.cross_entropy(ours(batch.x), batch.y).backward()
        agem.on_after_backward(ours, batch)
        opt_ours.step()
        opt_theirs.zero_grad()
        F.cross_entropy(theirs(batch.x), batch.y).backward()
        g = torch.cat([p.grad.flatten() for p in theirs.parameters()])
        theirs.zero_grad()
        replay = memory.buffer.sample(24)
        F.cross_entropy(theirs(replay.x), replay.y).backward()
        r = torch.cat([p.grad.flatten() for p in theirs.parameters()])
        if torch.dot(g, r) < 0:
            g = g - torch.dot(g, r) / torch.dot(r, r) * r
        offset = 0
        for p in theirs.parameters():
            p.grad.copy_(g[offset: offset + p.numel()].view_as(p))
            offset += p.numel()
        opt_theirs.step()
    assert 0 < agem.projections < agem.steps == 6
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-5)
    assert not torch.allclose(ours.heads[0].weight, net_for(stream).heads[0].weight, atol=1e-2)


class RecordingAGEM(AGEM):
    """A-GEM that records, at every step, g·g_ref before and after the projection (runner-built)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.records: list[dict] = []

    def reference_gradient(self, net: nn.Module, params: list[nn.Parameter]) -> list[Tensor]:
        self._reference = super().reference_gradient(net, params)
        return self._reference

    def on_after_backward(self, net: nn.Module, batch: Batch) -> None:
        params = [p for p in net.parameters() if p.requires_grad]
        before = [None if p.grad is None else p.grad.clone() for p in params]
        self._reference = None
        super().on_after_backward(net, batch)
        if self._reference is None:
            return
        flat = lambda ts: torch.cat([(torch.zeros_like(p) if t is None else t).flatten()  # noqa: E731
                                     for p, t in zip(params, ts, strict=True)])
        g, g_new, r = flat(before), flat([p.grad for p in params]), flat(self._reference)
        self.records.append({"dot": torch.dot(g, r).item(), "dot_after": torch.dot(g_new, r).item(),
                             "scale": (g_new.norm() * r.norm()).item(), "unchanged": torch.equal(g, g_new),
                             "memory_tasks": set(self.buffer.stored().t.tolist())})


def test_agem_state_dict_is_weights_only_loadable_and_gives_the_same_reference_gradient() -> None:
    stream = SplitDigits(scenario="class")
    net = net_for(stream)
    agem = AGEM(buffer_size=50, memory_batch_size=16, seed=2)
    agem.on_task_end(net, 0, [stream.train(0).batch(list(range(s, s + 32))) for s in range(0, 128, 32)])
    assert len(agem.buffer) == 50 and set(agem.buffer.stored().y.tolist()) == {0, 1}
    fresh = AGEM(buffer_size=50, memory_batch_size=16, seed=9)
    fresh.load_state_dict(weights_only_copy(agem.state_dict()))
    params = list(net.parameters())
    for a, b in zip(agem.reference_gradient(net, params), fresh.reference_gradient(net, params), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("cls, kwargs", [(DER, {"alpha": 0.5}), (DERpp, {"alpha": 0.5, "beta": 1.0})])
def test_der_state_dict_is_weights_only_loadable_with_the_logits(cls, kwargs) -> None:
    stream = SplitDigits(scenario="class")
    net = net_for(stream)
    der = cls(buffer_size=40, replay_batch_size=16, seed=5, **kwargs)
    stream_through(der, net, stream, range(2))
    perturb(net)
    fresh = cls(buffer_size=40, replay_batch_size=16, seed=1, **kwargs)
    fresh.load_state_dict(weights_only_copy(der.state_dict()))
    assert fresh.buffer.extras["logits"].shape == (40, 10)
    batch = stream.train(2).batch(list(range(16)))
    loss, again = der.loss(net, batch, net(batch.x)), fresh.loss(net, batch, net(batch.x))
    assert loss > 0 and torch.equal(loss, again)




# -- end to end on Split MNIST ------------------------------------------------------------------
COMMON = ["dataset=split_mnist", "schedule.epochs_per_task=1", "seed=0"]


@needs_mnist
def test_derpp_500_keeps_every_task_in_class_il(run_config) -> None:
    summary, _ = run_config(*COMMON, "dataset.scenario=class", "strategy=derpp", "strategy.buffer_size=500")
    assert summary["ACC"] > 0.70  # naive: ~0.19
    assert min(summary["accuracy_matrix"][-1]) > 0.5


@needs_mnist
def test_agem_projects_real_training_steps_and_beats_naive(tmp_path) -> None:
    from retentive.runner import ContinualRun, run

    overrides = [*COMMON, "dataset.scenario=domain", "logger=none", "callbacks=none"]
    naive = run(compose_config([*overrides, "strategy=naive"], tmp_path / "naive"), tmp_path / "naive")
    cfg = compose_config([*overrides, "strategy=agem"], tmp_path / "agem")
    cfg.strategy._target_ = f"{__name__}.RecordingAGEM"
    agem_run = ContinualRun(cfg, tmp_path / "agem")
    summary = agem_run.fit()
    records = agem_run.strategy.records
    assert len(records) == agem_run.strategy.steps > 300  # every step of tasks 1-4 (84 each); none in task 0
    projected = [r for r in records if r["dot"] < 0]
    assert 10 < len(projected) == agem_run.strategy.projections < len(records)  # both branches, for real
    assert all(r["dot_after"] >= -1e-5 * r["scale"] for r in records)  # never against the reference
    assert all(abs(r["dot_after"]) <= 1e-5 * r["scale"] for r in projected)  # onto the plane g·g_ref = 0
    assert all(r["unchanged"] for r in records if r["dot"] >= 0)  # bit for bit
    assert all(r["memory_tasks"] == set(range(max(r["memory_tasks"]) + 1)) for r in records)
    assert {max(r["memory_tasks"]) for r in records} == {0, 1, 2, 3}  # finished tasks only
    assert summary["ACC"] > naive["ACC"] + 0.15  # ~0.82 vs ~0.60 (seed 0)
