"""LwF and ER: the reservoir buffer, the teacher, the distillation loss, and both against naive on Split MNIST."""

from __future__ import annotations

import io
import math

import pytest
import torch
from torch import Tensor

from retentive.config import compose_config
from retentive.data import SplitDigits
from retentive.data.batch import Batch
from retentive.errors import ConfigError
from retentive.models import ContinualNet, mlp_backbone
from retentive.strategies import ER, LwF, ReservoirBuffer
from tests.conftest import needs_mnist, start_task


def weights_only_copy(state: dict) -> dict:
    """What a checkpoint gives back: torch.save, then torch.load(weights_only=True)."""
    stream = io.BytesIO()
    torch.save(state, stream)
    stream.seek(0)
    return torch.load(stream, weights_only=True)


def numbered(n: int, start: int = 0) -> Batch:
    """n samples whose index, label and pixel all say which stream sample they are."""
    ids = torch.arange(start, start + n)
    return Batch(ids.float().view(-1, 1, 1, 1), ids % 3, torch.zeros_like(ids), None, ids)


def offer(buffer: ReservoirBuffer, total: int, chunk: int) -> None:
    for start in range(0, total, chunk):
        buffer.add(numbered(min(chunk, total - start), start))


def net_for(stream: SplitDigits, seed: int, head_sizes: list[int] | None = None) -> ContinualNet:
    torch.manual_seed(seed)
    body, width = mlp_backbone(stream.input_shape, (32,))
    return ContinualNet(body, width, head_sizes or stream.head_sizes, stream.multihead)


# -- the reservoir ------------------------------------------------------------------------
@pytest.mark.parametrize("seen", [1, 9, 10, 11, 37, 200])
def test_reservoir_holds_min_of_seen_and_capacity_distinct_stream_samples(seen: int) -> None:
    buffer = ReservoirBuffer(10, seed=0)
    offer(buffer, seen, chunk=7)
    stored = buffer.stored()
    assert len(buffer) == min(seen, 10) == len(stored)
    ids = stored.index.tolist()
    assert len(set(ids)) == len(ids) and all(0 <= i < seen for i in ids)
    assert torch.equal(stored.x.view(-1), stored.index.float()) and torch.equal(stored.y, stored.index % 3)
    if seen <= 10:
        assert ids == list(range(seen))  # nothing is dropped before the buffer is full
    assert buffer.nbytes == 10 * 4 + 3 * 10 * 8


def test_reservoir_keeps_every_stream_sample_with_probability_capacity_over_seen() -> None:
    n, capacity, runs = 60, 15, 2000
    counts = torch.zeros(n)
    for seed in range(runs):
        buffer = ReservoirBuffer(capacity, seed=seed)
        offer(buffer, n, chunk=8)  # batches of 8: several samples of one batch can aim at one slot
        counts[buffer.stored().index] += 1
    frequency, p = counts / runs, capacity / n
    sigma = math.sqrt(p * (1 - p) / runs)  # binomial standard error, ~0.0097
    assert counts.sum() == runs * capacity
    assert (frequency - p).abs().max() < 5 * sigma, frequency
    # early and late samples alike (keep-first or always-replace buffers fail this by > 0.5)
    group_sigma = sigma / math.sqrt(capacity)
    assert abs(frequency[:capacity].mean() - p) < 5 * group_sigma
    assert abs(frequency[-capacity:].mean() - p) < 5 * group_sigma


def test_reservoir_state_round_trip_gives_identical_future_draws() -> None:
    stream = SplitDigits(scenario="class")
    first, second = stream.train(0).batch(), stream.train(1).batch()
    buffer = ReservoirBuffer(50, seed=3)
    buffer.add(first)
    restored = ReservoirBuffer(50, seed=99)
    restored.load_state_dict(weights_only_copy(buffer.state_dict()))
    other = ReservoirBuffer(50, seed=99)
    other.add(first)
    for buf in (buffer, restored, other):
        buf.add(second)
    draws = [[buf.sample(20) for _ in range(3)] for buf in (buffer, restored, other)]
    for a, b in zip(draws[0], draws[1], strict=True):
        assert all(torch.equal(getattr(a, f), getattr(b, f)) for f in ("x", "y", "t", "index"))
    assert any(not torch.equal(a.index, c.index) for a, c in zip(draws[0], draws[2], strict=True))
    assert len(restored) == 50 and restored.seen == len(first) + len(second)


def test_class_balanced_mode_evens_out_an_unbalanced_stream() -> None:
    labels = torch.cat([torch.zeros(300), torch.ones(30), torch.full((30,), 2.0)]).long()
    batch = Batch(torch.zeros(360, 1, 1, 1), labels, torch.zeros(360, dtype=torch.long), None, torch.arange(360))
    balanced, reservoir = ReservoirBuffer(30, 0, "class_balanced"), ReservoirBuffer(30, 0)
    for start in range(0, 360, 32):
        balanced.add(batch.select(slice(start, start + 32)))
        reservoir.add(batch.select(slice(start, start + 32)))
    assert torch.bincount(balanced.stored().y).tolist() == [10, 10, 10]
    assert torch.bincount(reservoir.stored().y, minlength=3)[0] > 15  # ~25 of 30 are class 0


def test_class_balanced_freezes_on_shared_labels_where_task_balanced_shares_the_memory() -> None:
    # Domain-IL: every task has labels 0 and 1; three tasks of 60 samples offered to 30 slots
    stream = SplitDigits(scenario="domain")
    kept = {}
    for mode in ("class_balanced", "task_balanced", "task_class_balanced"):
        buffer = ReservoirBuffer(30, seed=0, mode=mode)
        for task in range(3):
            data = stream.train(task).batch(list(range(60)))
            assert torch.equal(torch.unique(data.y), torch.tensor([0, 1])) and (data.t == task).all()
            buffer.add(data)
        stored = buffer.stored()
        kept[mode] = torch.bincount(stored.t, minlength=3).tolist()
        pairs = torch.bincount(stored.t * 2 + stored.y, minlength=6).tolist()
    assert kept["class_balanced"] == [30, 0, 0]  # the first task fills it, nothing later is ever short
    assert kept["task_balanced"] == [10, 10, 10]
    assert kept["task_class_balanced"] == [10, 10, 10] and pairs == [5] * 6  # GDumb's: every (task, class)


def test_er_task_end_fill_replays_only_earlier_tasks_in_equal_random_shares() -> None:
    stream = SplitDigits(scenario="domain")
    net = net_for(stream, seed=0)
    er = ER(buffer_size=40, buffer_mode="task_balanced", fill="task_end")
    er.setup(net)
    for task in range(3):
        er.on_task_start(net, task)
        batch = stream.train(task).batch(list(range(16)))
        er.on_train_batch_end(net, batch, net(batch.x))  # stream batches are not stored
        assert len(er.buffer) == (0 if task == 0 else 40)
        er.on_task_end(net, task, [stream.train(task).batch()])
    stored = er.buffer.stored()
    assert sorted(torch.bincount(stored.t).tolist()) == [13, 13, 14]  # 40 slots over 3 tasks, equal to within 1
    ids = stored.index[stored.t == 0]
    first_rows = stream.train(0).sample_ids[: len(ids)]
    assert len(set(ids.tolist())) == len(ids) and not torch.equal(ids.sort().values, first_rows.sort().values)
    with pytest.raises(ConfigError, match="strategy.fill"):
        ER(fill="epoch")


def test_er_state_dict_is_weights_only_loadable_and_replays_the_same_batch() -> None:
    stream = SplitDigits(scenario="class")
    net = net_for(stream, seed=0)
    er = ER(buffer_size=40, replay_batch_size=16, seed=5)
    for start in range(0, 96, 32):
        er.on_train_batch_end(net, stream.train(0).batch(list(range(start, start + 32))), torch.empty(0))
    fresh = ER(buffer_size=40, replay_batch_size=16, seed=1)
    fresh.load_state_dict(weights_only_copy(er.state_dict()))
    batch = stream.train(1).batch(list(range(32)))
    loss, again = er.loss(net, batch, net(batch.x)), fresh.loss(net, batch, net(batch.x))
    assert loss > 0 and torch.equal(loss, again)




# -- the teacher and the distillation loss ---------------------------------------------------
def lwf_after_task_0(stream: SplitDigits, net: ContinualNet, task: int = 1, **kwargs) -> LwF:
    return start_task(LwF(**kwargs), stream, net, task)


def perturb(net: ContinualNet, seed: int = 1) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=generator))


def test_teacher_survives_a_weights_only_checkpoint() -> None:
    stream = SplitDigits(scenario="class")
    net = net_for(stream, seed=0)
    lwf = lwf_after_task_0(stream, net)
    x = stream.train(1).batch().x
    before = net(x).detach()
    perturb(net)
    state = weights_only_copy(lwf.state_dict())
    other_net = net_for(stream, seed=7)  # another run's initialisation: only the weights may matter
    fresh = LwF()
    fresh.setup(other_net)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.teacher(x), lwf.teacher(x)) and torch.equal(fresh.teacher(x), before)
    assert not torch.allclose(net(x), before) and fresh.seen_classes == {0, 1}
    assert not any(p.requires_grad for p in fresh.teacher.net.parameters())


def kl(student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
    """Σ_c p_c log(p_c / q_c), averaged over samples, by hand in float64."""
    p = (teacher.double() / temperature).exp()
    p = p / p.sum(1, keepdim=True)
    q = (student.double() / temperature).exp()
    q = q / q.sum(1, keepdim=True)
    return (p * (p / q).log()).sum(1).mean()


def test_lwf_loss_is_zero_on_task_0_and_right_after_the_snapshot() -> None:
    stream = SplitDigits(scenario="class")
    net = net_for(stream, seed=0)
    batch = stream.train(0).batch(list(range(16)))
    lwf = LwF()
    lwf.setup(net)
    lwf.on_task_start(net, 0)
    assert lwf.loss(net, batch, net(batch.x)).item() == 0.0
    lwf.on_task_end(net, 0, [stream.train(0).batch()])
    lwf.on_task_start(net, 1)
    batch = stream.train(1).batch(list(range(16)))
    assert abs(lwf.loss(net, batch, net(batch.x)).item()) < 1e-6


def test_lwf_class_il_loss_is_the_kl_on_earlier_classes_units() -> None:
    stream = SplitDigits(scenario="class")
    net = net_for(stream, seed=0)
    lwf = lwf_after_task_0(stream, net, task=2, alpha=0.5, temperature=3.0)
    old = net_for(stream, seed=0)
    old.load_state_dict(net.state_dict())
    perturb(net)
    batch = stream.train(2).batch(list(range(16)))
    logits = net(batch.x)
    units = [0, 1, 2, 3]  # tasks 0 and 1
    expected = 0.5 * 9.0 * kl(logits[:, units], old(batch.x)[:, units], 3.0)
    assert lwf.loss(net, batch, logits).item() == pytest.approx(expected.item(), rel=1e-4)
    every_unit = 0.5 * 9.0 * kl(logits, old(batch.x), 3.0)  # what distilling all 10 units would give
    assert expected.item() > 0.01 and abs(every_unit.item() - expected.item()) > 0.01


def test_lwf_task_il_loss_sums_the_kl_of_every_earlier_head_without_padding() -> None:
    stream = SplitDigits(scenario="task")
    sizes = [2, 3, 2, 2, 2]  # heads 0, 2, 3, 4 are padded with -inf to width 3
    net = net_for(stream, seed=0, head_sizes=sizes)
    lwf = lwf_after_task_0(stream, net, task=2)
    old = net_for(stream, seed=0, head_sizes=sizes)
    old.load_state_dict(net.state_dict())
    perturb(net)
    batch = stream.train(2).batch(list(range(16)))
    terms = [4.0 * kl(net.heads[j](net.features(batch.x)), old.heads[j](old.features(batch.x)), 2.0) for j in (0, 1)]
    loss = lwf.loss(net, batch, net(batch.x, batch.t))
    assert torch.isfinite(loss) and loss.item() == pytest.approx(sum(terms).item(), rel=1e-4)
    assert min(terms).item() > 0.01  # both earlier heads count


def test_lwf_van_de_ven_form_weighs_by_task_and_pads_the_teacher_over_the_active_classes() -> None:
    stream = SplitDigits(scenario="class")
    net = net_for(stream, seed=0)
    lwf = lwf_after_task_0(stream, net, task=2, balance="by_task", student_units="active")
    lwf.train_dataset(2, stream)  # the runner's order: the task's classes (4, 5) become active
    assert lwf.task_loss_weight == pytest.approx(1 / 3)  # rnt = 1/t, t = 3 (1-based)
    old = net_for(stream, seed=0)
    old.load_state_dict(net.state_dict())
    perturb(net)
    batch = stream.train(2).batch(list(range(16)))
    logits = net(batch.x).detach().requires_grad_(True)
    p = torch.softmax(old(batch.x)[:, :4].double() / 2.0, 1)  # teacher: old classes 0-3 only
    log_q = torch.log_softmax(logits[:, :6].double() / 2.0, 1)  # student: every class seen, 0-5
    padded = torch.cat([p, torch.zeros(16, 2, dtype=torch.double)], 1)
    soft_ce = -(padded * log_q).sum(1).mean()  # van de Ven's loss_fn_kd, before T^2
    entropy = -(p * p.log()).sum(1).mean()  # ours is the KL: the soft CE minus the teacher's entropy
    expected = (2 / 3) * 4.0 * (soft_ce - entropy)
    loss = lwf.loss(net, batch, logits)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()
    assert (logits.grad[:, 4:6] > 0).all()  # descending pushes the current classes' scores down
    assert (logits.grad[:, 6:] == 0).all()  # unseen classes take no part
    with pytest.raises(ConfigError, match="strategy.balance"):
        LwF(balance="even")


def test_lwf_by_task_averages_the_earlier_heads_in_task_il() -> None:
    stream = SplitDigits(scenario="task")
    net = net_for(stream, seed=0, head_sizes=[2] * 5)
    summed = lwf_after_task_0(stream, net, task=2)
    averaged = lwf_after_task_0(stream, net, task=2, balance="by_task")
    perturb(net)
    batch = stream.train(2).batch(list(range(16)))
    logits = net(batch.x, batch.t)
    # by_task: (1 - 1/3) * mean over the 2 earlier heads = (2/3) / 2 of the plain sum
    assert averaged.loss(net, batch, logits).item() == pytest.approx(summed.loss(net, batch, logits).item() / 3,
                                                                     rel=1e-5)
    assert summed.task_loss_weight == 1.0 and averaged.task_loss_weight == pytest.approx(1 / 3)


# -- against naive, end to end on Split MNIST -----------------------------------------------
RUNS = {  # full Split MNIST, 1 epoch per task, same seed
    "naive-task": ["strategy=naive", "dataset.scenario=task"],
    "lwf-task": ["strategy=lwf", "dataset.scenario=task"],
    "naive-class": ["strategy=naive", "dataset.scenario=class"],
    "er-class": ["strategy=er", "dataset.scenario=class", "strategy.buffer_size=200", "checkpoint.keep_every_task=true"],
}
COMMON = ["dataset=split_mnist", "schedule.epochs_per_task=1", "seed=0", "logger=none", "callbacks=none"]


@pytest.fixture(scope="module")
def split_mnist_runs(tmp_path_factory):
    from retentive.runner import run

    results = {}
    for name, overrides in RUNS.items():
        out = tmp_path_factory.mktemp(name)
        results[name] = run(compose_config([*COMMON, *overrides], out), out), out
    return results


@needs_mnist
def test_lwf_forgets_less_than_naive_in_task_il(split_mnist_runs) -> None:
    naive, lwf = split_mnist_runs["naive-task"][0], split_mnist_runs["lwf-task"][0]
    assert lwf["ACC"] > naive["ACC"]
    assert lwf["forgetting"] < naive["forgetting"]


@needs_mnist
def test_er_beats_naive_by_30_points_in_class_il(split_mnist_runs) -> None:
    naive, er = split_mnist_runs["naive-class"][0], split_mnist_runs["er-class"][0]
    assert naive["ACC"] < 0.3
    assert er["ACC"] > naive["ACC"] + 0.30
    assert min(er["accuracy_matrix"][-1]) > 0.5  # every old task is remembered, not only the last


@needs_mnist
def test_er_resumed_after_task_2_ends_exactly_like_the_uninterrupted_run(split_mnist_runs, tmp_path) -> None:
    from retentive.resume.checkpoint import load_checkpoint
    from retentive.runner import run

    summary, out = split_mnist_runs["er-class"]
    state = load_checkpoint(out / "checkpoints" / "after_task2.pt")  # weights_only=True
    assert state["strategy"]["buffer"]["size"] == 200
    resumed = run(compose_config([*COMMON, *RUNS["er-class"]], tmp_path), tmp_path, resume_state=state)
    assert resumed["accuracy_matrix"] == summary["accuracy_matrix"]
