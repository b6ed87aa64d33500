"""iCaRL and GDumb: herding, the exemplar budget, nearest-mean-of-exemplars scores, GDumb's balanced
memory-only training, weights-only state round trips, and both end to end on Split MNIST Class-IL."""

from __future__ import annotations

import io
import math
import os
from functools import partial

import lightning as L
import pytest
import torch
import torch.nn.functional as F

from retentive.config import compose_config
from retentive.data import SplitDigits, SplitMNIST
from retentive.data.batch import Batch
from retentive.data.loaders import make_loader, plain_loader
from retentive.errors import ConfigError
from retentive.models import ContinualNet, mlp_backbone
from retentive.strategies.gdumb import GDumb
from retentive.strategies.herding import herding
from retentive.strategies.icarl import ICaRL
from tests.conftest import needs_mnist


def weights_only_copy(state: dict) -> dict:
    """What a checkpoint gives back: torch.save, then torch.load(weights_only=True)."""
    stream = io.BytesIO()
    torch.save(state, stream)
    stream.seek(0)
    return torch.load(stream, weights_only=True)


def net_for(stream, seed: int = 0, multihead: bool | None = None) -> ContinualNet:
    torch.manual_seed(seed)
    body, width = mlp_backbone(stream.input_shape, (32,))
    multihead = stream.multihead if multihead is None else multihead
    return ContinualNet(body, width, stream.head_sizes if multihead else [max(stream.head_sizes)], multihead)


def perturb(net: ContinualNet, seed: int) -> None:
    """Stands in for a task's training: moves every weight."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=generator))


def icarl_through(stream, net: ContinualNet, tasks: int, **kwargs) -> ICaRL:
    """iCaRL's hooks, in the runner's order, for `tasks` tasks (the net perturbed as 'training')."""
    icarl = ICaRL(**kwargs)
    icarl.setup(net)
    for task in range(tasks):
        icarl.train_dataset(task, stream)
        icarl.on_task_start(net, task)
        perturb(net, seed=task)
        icarl.on_train_batch_end(net, stream.train(task).batch([0]), torch.empty(0))
        icarl.on_task_end(net, task, plain_loader(stream.train(task), 64))
    return icarl


def nme_by_hand(net: ContinualNet, icarl: ICaRL, x: torch.Tensor) -> torch.Tensor:
    """−‖φ(x) − μ_c‖ per class c from the stored exemplars, in float64; −inf without exemplars."""
    memory = icarl.memory
    with torch.no_grad():
        phi = F.normalize(net.features(x).double(), dim=1)
        scores = torch.full((len(x), icarl.num_outputs), float("-inf"), dtype=torch.float64)
        for c in torch.unique(memory.labels).tolist():
            rows = (memory.labels == c).nonzero().squeeze(1)
            exemplars = F.normalize(net.features(memory.batch(rows).x).double(), dim=1)
            mu = F.normalize(exemplars.mean(0), dim=0)
            scores[:, c] = -(phi - mu).pow(2).sum(1).sqrt()
    return scores


# -- herding ---------------------------------------------------------------------------------
def test_herding_picks_the_sample_nearest_the_mean_first_and_never_twice() -> None:
    features = torch.tensor([[4.0, 0.0], [0.0, 4.0], [1.1, 0.9], [2.0, 2.0], [-1.0, -1.0]])  # mean (1.2, 1.18)
    order = herding(features, 5)
    assert order[0] == 2 and sorted(order.tolist()) == [0, 1, 2, 3, 4]
    assert order[:2].tolist() == [2, 3]  # (1.1+2)/2, (0.9+2)/2 = (1.55, 1.45), the best pair with sample 2
    assert herding(features, 99).tolist() == order.tolist() and len(herding(features, 0)) == 0


@needs_mnist
def test_herding_mean_is_closer_to_the_class_mean_than_random_picks_on_mnist_features() -> None:
    stream = SplitMNIST(scenario="class", data_dir=os.environ["DATA_DIR"])
    data = stream.train(1)
    x = data.batch((data.labels == 3).nonzero().squeeze(1)).x  # ~5,500 real threes
    with torch.no_grad():
        features = F.normalize(net_for(stream, seed=0).features(x), dim=1)
    mean = features.mean(0)
    generator = torch.Generator().manual_seed(0)
    ratios = []
    for m in (5, 20, 100):
        herded = (features[herding(features, m)].mean(0) - mean).norm()
        random = torch.stack([(features[torch.randperm(len(features), generator=generator)[:m]].mean(0) - mean).norm()
                              for _ in range(200)])
        assert herded < random.min(), (m, herded, random.min())  # better than the best of 200 random draws
        ratios.append((herded / random.median()).item())
    # herding's error falls like 1/m, a random subset's like 1/sqrt(m): measured 0.41, 0.25, 0.11
    assert ratios[0] < 0.5 and ratios[1] < ratios[0] and ratios[2] < 0.2, ratios


# -- iCaRL's memory and classifier -------------------------------------------------------------
def test_icarl_memory_never_exceeds_k_over_classes_and_shrinks_old_sets_to_their_first_m() -> None:
    stream = SplitDigits(scenario="class")
    net = net_for(stream)
    icarl = ICaRL(buffer_size=25)
    icarl.setup(net)
    previous: dict[int, list[int]] = {}
    for task in range(5):
        icarl.train_dataset(task, stream)
        icarl.on_task_start(net, task)
        perturb(net, seed=task)
        icarl.on_task_end(net, task, plain_loader(stream.train(task), 64))
        counts = torch.bincount(icarl.memory.labels)
        seen = 2 * (task + 1)
        assert len(counts) == seen and (counts == 25 // seen).all() and counts.sum() <= 25
        for c, ids in previous.items():  # the first m of each old set, in their herding order
            assert icarl.memory.sample_ids[icarl.memory.labels == c].tolist() == ids[: 25 // seen]
        previous = {c: icarl.memory.sample_ids[icarl.memory.labels == c].tolist() for c in range(seen)}
    assert icarl.state_dict()["memory"]["images"].dtype == torch.uint8


def test_icarl_trains_on_the_task_plus_every_exemplar() -> None:
    stream = SplitDigits(scenario="class")
    icarl = icarl_through(stream, net_for(stream), tasks=2, buffer_size=40)
    dataset = icarl.train_dataset(2, stream)
    assert len(dataset) == len(stream.train(2)) + 40
    assert torch.bincount(dataset.labels).tolist() == [10, 10, 10, 10, *torch.bincount(stream.train(2).labels)[4:].tolist()]


def test_icarl_eval_logits_are_the_negative_distances_to_the_exemplar_means() -> None:
    stream = SplitDigits(scenario="class")
    net = net_for(stream)
    icarl = icarl_through(stream, net, tasks=2, buffer_size=40)
    x = torch.cat([stream.test(t).batch().x for t in range(3)])  # seen classes 0-3 and unseen 4, 5
    zeros = torch.zeros(len(x), dtype=torch.long)
    scores, expected = icarl.eval_logits(net, Batch(x, zeros, zeros)), nme_by_hand(net, icarl, x)
    assert torch.isinf(scores[:, 4:]).all() and torch.isfinite(scores[:, :4]).all()
    assert torch.allclose(scores[:, :4].double(), expected[:, :4], atol=1e-5)
    assert torch.equal(scores.argmax(1), expected.argmax(1))
    assert not torch.equal(scores.argmax(1), net(x).argmax(1))  # not the head's answer


def test_icarl_evaluation_before_the_task_end_selects_what_the_task_end_commits() -> None:
    stream = SplitDigits(scenario="class")
    lazy, eager = (icarl_through(stream, net_for(stream), tasks=1, buffer_size=40) for _ in range(2))
    nets = []
    for icarl in (lazy, eager):
        net = net_for(stream)
        icarl.train_dataset(1, stream)
        icarl.on_task_start(net, 1)
        perturb(net, seed=1)
        icarl.on_train_batch_end(net, stream.train(1).batch([0]), torch.empty(0))
        nets.append(net)
    x = stream.test(1).batch().x
    zeros = torch.zeros(len(x), dtype=torch.long)
    before_end = lazy.eval_logits(nets[0], Batch(x, zeros, zeros))
    assert torch.isfinite(before_end[:, :4]).all()  # the runner tests before on_task_end: 2, 3 are scored
    for icarl, net in zip((lazy, eager), nets, strict=True):
        icarl.on_task_end(net, 1, plain_loader(stream.train(1), 64))
    assert torch.equal(lazy.memory.sample_ids, eager.memory.sample_ids)
    assert torch.equal(lazy.memory.labels, eager.memory.labels)


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_icarl_loss_is_bce_with_one_hot_new_and_teacher_sigmoid_old_targets(temperature: float) -> None:
    stream = SplitDigits(scenario="class")
    net = net_for(stream)
    icarl = icarl_through(stream, net, tasks=1, buffer_size=40, bce_weight=0.5, temperature=temperature)
    teacher = net_for(stream)
    teacher.load_state_dict(net.state_dict())
    icarl.train_dataset(1, stream)
    icarl.on_task_start(net, 1)
    perturb(net, seed=7)
    batch = Batch.cat([stream.train(1).batch(list(range(12))), icarl.memory.batch([0, 1, 30, 31])])
    logits = net(batch.x)
    with torch.no_grad():
        old = torch.sigmoid(teacher(batch.x)[:, :2] / temperature)
    targets = torch.cat([old, F.one_hot(batch.y, 10)[:, 2:4].float()], 1)  # units 0, 1 old; 2, 3 new
    p = torch.sigmoid(logits[:, :4]).double()
    expected = -(targets * p.log() + (1 - targets) * (1 - p).log()).mean()
    assert icarl.loss(net, batch, logits).item() == pytest.approx(0.5 * expected.item(), rel=1e-5)


def test_icarl_ce_weight_zero_trains_on_the_bce_alone_as_the_paper() -> None:
    from torch.utils.data import DataLoader

    from retentive.data import collate_batch
    from retentive.module import ContinualModule

    stream = SplitDigits(scenario="class")
    terms = {}
    for ce_weight in (0.0, 1.0):
        torch.manual_seed(0)
        net = net_for(stream)
        icarl = icarl_through(stream, net, tasks=1, buffer_size=40, ce_weight=ce_weight)
        data = icarl.train_dataset(1, stream)
        icarl.on_task_start(net, 1)
        module = ContinualModule(net, icarl, stream.num_tasks, partial(torch.optim.SGD, lr=0.0))
        trainer = L.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                            enable_model_summary=False)
        trainer.fit(module, DataLoader(data.subset(torch.arange(32)), batch_size=32, collate_fn=collate_batch))
        terms[ce_weight] = {k: float(v) for k, v in module.step_terms.items()}
    bce_only, both = terms[0.0], terms[1.0]
    assert bce_only["train/penalty"] > 0 and bce_only["train/task_loss"] > 0.1  # the CE is measured, not used
    assert bce_only["train/loss"] == pytest.approx(bce_only["train/penalty"], rel=1e-6)
    assert both["train/loss"] == pytest.approx(both["train/task_loss"] + both["train/penalty"], rel=1e-6)
    with pytest.raises(ConfigError, match="strategy.ce_weight"):
        ICaRL(bce_weight=0.0, ce_weight=0.0)
    with pytest.raises(ConfigError, match="strategy.ce_weight"):
        ICaRL(ce_weight=-1.0)


def test_icarl_state_round_trips_through_a_weights_only_checkpoint() -> None:
    stream = SplitDigits(scenario="class")
    net = net_for(stream)
    icarl = icarl_through(stream, net, tasks=2, buffer_size=40)
    fresh = ICaRL(buffer_size=40)
    fresh.setup(net_for(stream, seed=5))
    fresh.load_state_dict(weights_only_copy(icarl.state_dict()))
    x = stream.test(0).batch().x
    batch = Batch(x, torch.zeros(len(x), dtype=torch.long), torch.zeros(len(x), dtype=torch.long))
    assert torch.equal(fresh.eval_logits(net, batch), icarl.eval_logits(net, batch))
    assert torch.equal(fresh.memory.images, icarl.memory.images) and fresh.memory.mean == icarl.memory.mean
    fresh.train_dataset(2, stream)
    icarl.train_dataset(2, stream)
    train = stream.train(2).batch(list(range(16)))
    assert torch.equal(fresh.loss(net, train, net(train.x)), icarl.loss(net, train, net(train.x)))  # same teacher
    with pytest.raises(ConfigError, match="strategy.buffer_size"):
        ICaRL(buffer_size=41).load_state_dict(icarl.state_dict())


def test_icarl_refuses_what_it_cannot_classify() -> None:
    with pytest.raises(ConfigError) as error:
        ICaRL().setup(net_for(SplitDigits(scenario="task")))
    assert str(error.value).startswith("dataset.scenario")
    domain = SplitDigits(scenario="domain")
    icarl = ICaRL()
    icarl.setup(net_for(domain))
    with pytest.raises(ConfigError, match="dataset.scenario"):
        icarl.train_dataset(0, domain)
    with pytest.raises(ConfigError, match="strategy.buffer_size"):
        ICaRL(buffer_size=9).setup(net_for(SplitDigits(scenario="class")))




# -- GDumb -------------------------------------------------------------------------------------
def test_gdumb_memory_stays_class_balanced_and_is_all_it_trains_on() -> None:
    stream = SplitDigits(scenario="class")
    gdumb = GDumb(buffer_size=60, seed=0)
    gdumb.setup(net_for(stream))
    for task in range(5):
        dataset = gdumb.train_dataset(task, stream)
        counts = torch.bincount(gdumb.buffer.stored().y)
        assert len(dataset) == 60 and len(counts) == 2 * (task + 1)
        assert counts.max() - counts.min() <= 1, counts  # 30/30, 15 x 4, 10 x 6, 7-8 x 8, 6 x 10
        seen = gdumb.buffer.seen
        assert len(gdumb.train_dataset(task, stream)) == 60 and gdumb.buffer.seen == seen  # absorbed once
        loader = make_loader(dataset, 16, True, sampler=gdumb.train_sampler(task, dataset, None))
        drawn = Batch.cat(list(loader))
        assert len(drawn) == len(stream.train(task))  # the stream's budget of samples, from the memory
        stored = gdumb.buffer.stored()
        assert set(zip(drawn.y.tolist(), drawn.index.tolist(), strict=True)) <= set(
            zip(stored.y.tolist(), stored.index.tolist(), strict=True))


def test_gdumb_reinitialises_from_its_seed_without_touching_the_global_rng() -> None:
    stream = SplitDigits(scenario="class")
    nets = [net_for(stream, seed=s) for s in (0, 1)]
    for net in nets:
        rng = torch.get_rng_state()
        parameters = list(net.parameters())
        GDumb(seed=3).on_task_start(net, 1)
        assert torch.equal(torch.get_rng_state(), rng)
        assert all(a is b for a, b in zip(parameters, net.parameters(), strict=True))  # in place
    assert all(torch.equal(a, b) for a, b in zip(nets[0].parameters(), nets[1].parameters(), strict=True))
    untouched = net_for(stream, seed=0)
    GDumb(seed=3, reinit=False).on_task_start(untouched, 1)
    assert torch.equal(untouched.heads[0].weight, net_for(stream, seed=0).heads[0].weight)


def test_gdumb_masks_classes_absent_from_memory_and_round_trips_its_state() -> None:
    stream = SplitDigits(scenario="class")
    net = net_for(stream)
    gdumb = GDumb(buffer_size=60, seed=0)
    x = stream.test(0).batch().x
    batch = Batch(x, torch.zeros(len(x), dtype=torch.long), torch.zeros(len(x), dtype=torch.long))
    assert torch.equal(gdumb.eval_logits(net, batch), net(x))  # empty memory: the random-init reference
    gdumb.train_dataset(0, stream)
    scores = gdumb.eval_logits(net, batch)
    assert torch.equal(scores[:, :2], net(x)[:, :2]) and torch.isinf(scores[:, 2:]).all()
    fresh = GDumb(buffer_size=60, seed=9)
    fresh.load_state_dict(weights_only_copy(gdumb.state_dict()))
    assert torch.equal(fresh.eval_logits(net, batch), scores)
    for strategy in (gdumb, fresh):
        strategy.train_dataset(1, stream)  # same evictions: the generator state came along
    assert torch.equal(fresh.buffer.stored().index, gdumb.buffer.stored().index)
    with pytest.raises(ConfigError, match="dataset.scenario"):
        GDumb().setup(net_for(SplitDigits(scenario="task")))


# -- end to end on Split MNIST, Class-IL, 1 epoch per task --------------------------------------
COMMON = ["dataset=split_mnist", "dataset.scenario=class", "schedule.epochs_per_task=1", "seed=0",
          "logger=none", "callbacks=none"]


@pytest.fixture(scope="module")
def icarl_run(tmp_path_factory):
    from retentive.runner import run

    out = tmp_path_factory.mktemp("icarl")
    overrides = [*COMMON, "strategy=icarl", "strategy.buffer_size=500", "checkpoint.keep_every_task=true"]
    return run(compose_config(overrides, out), out), out


@needs_mnist
def test_icarl_ends_far_above_naive_on_split_mnist_class_il(icarl_run) -> None:
    summary, _ = icarl_run
    assert summary["ACC"] > 0.70  # naive ends at ~0.19
    assert min(summary["final_accuracy_per_task"]) > 0.5  # every old task, not only the last


@needs_mnist
def test_icarl_run_memory_respects_the_budget_and_its_checkpoint_reproduces_the_test(icarl_run) -> None:
    from retentive.evaluate import evaluate_checkpoint
    from retentive.resume.checkpoint import load_checkpoint

    summary, out = icarl_run
    for task in range(4):  # the memory committed at each task end (none after the last one)
        state = load_checkpoint(out / "checkpoints" / f"after_task{task}.pt")["strategy"]
        counts = torch.bincount(state["memory"]["labels"])
        seen = 2 * (task + 1)
        assert len(counts) == seen and counts.max() <= 500 // seen and counts.sum() <= 500
    last = load_checkpoint(out / "checkpoints" / "last.pt")["strategy"]
    assert last["mean_classes"].tolist() == list(range(10)) and len(last["pending"]["positions"]) == 2 * 50
    evaluated = evaluate_checkpoint(out / "checkpoints" / "last.pt")  # NME from the checkpoint's state
    assert evaluated["accuracy"] == pytest.approx(summary["final_accuracy_per_task"], abs=1e-6)


@needs_mnist
def test_gdumb_trains_only_on_its_memory_with_the_streams_step_budget(run_config) -> None:
    summary, _ = run_config(*COMMON, "strategy=gdumb", "strategy.buffer_size=500")
    stream = SplitMNIST(scenario="class", data_dir=os.environ["DATA_DIR"])
    steps = [math.ceil(len(stream.train(t)) / 128) for t in range(5)]
    assert summary["task_end_steps"] == [sum(steps[: t + 1]) for t in range(5)]
    assert summary["ACC"] > 0.80  # 500 samples, trained from scratch after every task
