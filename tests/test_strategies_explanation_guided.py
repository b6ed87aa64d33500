"""Saliency replay (RRR, Ebrahimi et al. 2021) and attention distillation (LwM, Dhar et al. 2019):
stored maps, the penalties' values and gradients, composition with another rehearsal method,
checkpoint round trips, one-line config errors, and end-to-end runs on Split MNIST."""

from __future__ import annotations

import copy
import io
import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from retentive.config import compose_config
from retentive.data.batch import Batch
from retentive.data.split import SplitMNIST
from retentive.errors import ConfigError
from retentive.explanations.camloss import grad_cam, upsampled_cam
from retentive.models import ContinualNet
from retentive.models.cnn import cnn_backbone
from retentive.models.mlp import mlp_backbone
from retentive.strategies import ER, LwF
from retentive.strategies.attention_distillation import AttentionDistillation
from retentive.strategies.saliency_replay import (
    MAPS,
    ROW,
    SaliencyReplay,
    SaliencyReplayMixin,
    upsample_bilinear,
)
from tests.conftest import needs_mnist, start_task

pytestmark = needs_mnist
SMALL_CNN = ["model=cnn", "model.backbone.channels=[8,16]", "model.backbone.hidden=64"]


@pytest.fixture(scope="module")
def streams() -> dict[str, SplitMNIST]:
    return {s: SplitMNIST(scenario=s, train_samples_per_task=300, test_samples_per_task=50) for s in ("class", "task")}


def small_net(stream: SplitMNIST, conv: bool, seed: int = 0) -> ContinualNet:
    torch.manual_seed(seed)
    body = cnn_backbone(stream.input_shape, (8, 16), hidden=64) if conv else mlp_backbone(stream.input_shape, (64,))
    return ContinualNet(*body, stream.head_sizes if stream.multihead else [10], stream.multihead)


def perturb(net: ContinualNet, scale: float = 0.05, seed: int = 1) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(scale * p.abs().mean() * torch.randn(p.shape, generator=generator))


def weights_only_copy(state: dict) -> dict:
    stream = io.BytesIO()
    torch.save(state, stream)
    stream.seek(0)
    return torch.load(stream, weights_only=True)


def reference_maps(net: ContinualNet, batch: Batch, kind: str) -> Tensor:
    """The stored map written out independently: camloss's upsampled GradCAM, or d logit_y/dx / max|.|."""
    net.eval()
    if kind == "gradcam":
        return upsampled_cam(net, batch.x, batch.y, None, create_graph=False).detach()
    x = batch.x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(net(x).gather(1, batch.y.view(-1, 1)).sum(), x)
    return grad / (grad.abs().amax((1, 2, 3), keepdim=True) + 1e-8)


# -- saliency replay ------------------------------------------------------------------------
@pytest.mark.parametrize(("small", "large"), [((14, 14), (28, 28)), ((7, 5), (28, 31)), ((6, 6), (6, 6))])
def test_matrix_upsampling_equals_bilinear_interpolate(small, large) -> None:
    maps = torch.rand(3, 1, *small, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    expected = F.interpolate(maps, size=large, mode="bilinear", align_corners=False)
    torch.testing.assert_close(upsample_bilinear(maps, large), expected, rtol=0, atol=1e-12)


def test_stored_maps_are_the_nets_explanation_at_insertion_and_only_stored_samples_are_explained(streams) -> None:
    stream = streams["class"]
    net = small_net(stream, conv=True)
    sr = SaliencyReplay(buffer_size=24, seed=0)
    sr.setup(net)
    explained = []
    maps = sr.maps
    sr.maps = lambda n, b, create_graph=False: explained.append(len(b)) or maps(n, b, create_graph)
    first = stream.train(0).batch(list(range(32)))
    sr.on_train_batch_end(net, first, torch.empty(0))
    stored = sr.buffer.extras[MAPS]
    assert stored.shape == (24, 1, 28, 28) and explained == [24]  # the input's spatial shape
    torch.testing.assert_close(stored, reference_maps(net, sr.buffer.stored(), "gradcam"))
    before = copy.deepcopy(net)
    perturb(net)
    second = stream.train(1).batch(list(range(64)))
    sr.on_train_batch_end(net, second, torch.empty(0))
    samples, stored = sr.buffer.stored(), sr.buffer.extras[MAPS]
    new = samples.y >= 2  # task 1's labels (2, 3): the slots this add overwrote
    assert 0 < new.sum() < 24 and explained[1] == new.sum()  # only what was stored was explained
    torch.testing.assert_close(stored[new], reference_maps(net, samples.select(new), "gradcam"))
    torch.testing.assert_close(stored[~new], reference_maps(before, samples.select(~new), "gradcam"))
    assert not torch.allclose(stored[~new], reference_maps(net, samples.select(~new), "gradcam"), atol=1e-3)
    assert (sr.buffer.extras[ROW] == -1).all() and ROW not in sr.state_dict()["buffer"]["extras"]


@pytest.mark.parametrize(("kind", "conv"), [("gradcam", True), ("input_gradient", False)])
def test_saliency_penalty_is_zero_after_storage_then_the_l1_drift_with_gradients_on_the_backbone(
        streams, kind: str, conv: bool) -> None:
    stream = streams["class"]
    net = small_net(stream, conv=conv)
    sr = SaliencyReplay(buffer_size=40, explanation_map="auto", replay_weight=0.0, seed=2)
    sr.setup(net)
    batch = stream.train(0).batch(list(range(40)))
    sr.on_train_batch_end(net, batch, torch.empty(0))
    assert sr.buffer.extras[MAPS].shape == (40, 1, 28, 28)  # [N,1,H,W] CAM, or the [N,C,H,W] gradient, C = 1
    assert sr.saliency_loss(net, 40).item() < 1e-6
    perturb(net, scale=0.2)
    loss = sr.loss(net, batch, net(batch.x))  # replay_weight 0: the saliency term alone
    assert net.training  # the maps were read in eval mode, and the mode given back
    # every stored sample drawn, so the mean is over all of them whatever the order
    expected = (reference_maps(net, sr.buffer.stored(), kind) - sr.buffer.extras[MAPS]).abs().mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-4) and loss.item() > 0.01
    net.zero_grad()
    loss.backward()
    first_layer = net.backbone[0] if conv else net.backbone[1]
    assert first_layer.weight.grad.abs().sum() > 0 and net.heads[0].weight.grad.abs().sum() > 0


class LogitReplay(ER):
    """A DER-like rehearsal method: stores each sample's logits beside it (`add(batch, logits=...)`)."""

    def on_train_batch_end(self, net, batch, logits) -> None:
        self.buffer.add(batch, logits=logits)


class SaliencyLogitReplay(SaliencyReplayMixin, LogitReplay):
    pass


def test_the_mixin_adds_maps_to_another_rehearsal_methods_buffer_and_its_penalty_to_the_loss(streams) -> None:
    stream = streams["class"]
    net = small_net(stream, conv=True)
    strategy = SaliencyLogitReplay(buffer_size=16, seed=3, weight=2.0, replay_weight=0.0, saliency_batch_size=16)
    strategy.setup(net)
    for task, seed in ((0, 1), (1, 2)):
        batch = stream.train(task).batch(list(range(32)))
        strategy.on_train_batch_end(net, batch, net(batch.x).detach())
        perturb(net, seed=seed)
    samples, extras = strategy.buffer.stored(), strategy.buffer.extras
    old, new = samples.y < 2, samples.y >= 2
    assert old.any() and new.any()
    # each slot's logits (the base's extra) and map come from the net that stored it
    at_insertion = small_net(stream, conv=True)  # the net as it stored task 0's samples
    for rows in (old, new):
        torch.testing.assert_close(extras["logits"][rows], at_insertion(samples.x[rows]).detach())
        torch.testing.assert_close(extras[MAPS][rows], reference_maps(at_insertion, samples.select(rows), "gradcam"))
        perturb(at_insertion, seed=1)  # ... and as it stored task 1's
    batch = stream.train(1).batch(list(range(16)))
    loss = strategy.loss(net.train(), batch, net(batch.x))  # the base's replay weight is 0: the penalty alone
    expected = 2.0 * (reference_maps(net, samples, "gradcam") - extras[MAPS]).abs().mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-4) and loss.item() > 0


def test_saliency_replay_state_is_weights_only_loadable_and_gives_the_same_penalty(streams) -> None:
    stream = streams["class"]
    net = small_net(stream, conv=True)
    sr = SaliencyReplay(buffer_size=30, seed=5, saliency_batch_size=12)
    sr.setup(net)
    for start in (0, 32, 64):
        sr.on_train_batch_end(net, stream.train(0).batch(list(range(start, start + 32))), torch.empty(0))
    perturb(net)
    fresh = SaliencyReplay(buffer_size=30, seed=9, saliency_batch_size=12)
    fresh.setup(net)
    state = weights_only_copy(sr.state_dict())
    assert state["buffer"]["extras"][MAPS].shape == (30, 1, 28, 28)
    fresh.load_state_dict(state)
    batch = stream.train(1).batch(list(range(32)))
    loss, again = sr.loss(net, batch, net(batch.x)), fresh.loss(net, batch, net(batch.x))
    assert loss > 0 and torch.equal(loss, again)
    fresh.on_train_batch_end(net, batch, torch.empty(0))  # and it keeps storing maps after a resume
    assert (fresh.buffer.stored().y >= 2).any()


# -- attention distillation ----------------------------------------------------------------
def normalised_l1(a: Tensor, b: Tensor) -> Tensor:
    a, b = a.flatten(1), b.flatten(1)
    return (a / a.norm(dim=1, keepdim=True) - b / b.norm(dim=1, keepdim=True)).abs().sum(1).mean()


def distillation_after(stream: SplitMNIST, net: ContinualNet, task: int, **kwargs) -> AttentionDistillation:
    return start_task(AttentionDistillation(**kwargs), stream, net, task)


def test_attention_distillation_is_zero_for_the_teacher_itself_then_lwms_l1_with_gradients(streams) -> None:
    stream = streams["class"]
    net = small_net(stream, conv=True)
    ad = distillation_after(stream, net, task=1)
    teacher = copy.deepcopy(net).eval()
    batch = stream.train(1).batch(list(range(32)))
    assert ad.attention_loss(net, batch).item() < 1e-6
    perturb(net, scale=0.3)
    target = teacher(batch.x)[:, :2].argmax(1)  # the teacher's top-1 among the old classes 0, 1
    expected = normalised_l1(grad_cam(net.eval(), batch.x, target, None), grad_cam(teacher, batch.x, target, None))
    net.train()
    attention = ad.attention_loss(net, batch)
    assert attention.item() == pytest.approx(expected.item(), rel=1e-4) and attention.item() > 0.05
    net.zero_grad()
    attention.backward()
    assert net.backbone[0].weight.grad.abs().sum() > 0
    lwf = distillation_after(stream, small_net(stream, conv=True), task=1)
    lwf.teacher = ad.teacher
    full = ad.loss(net, batch, net(batch.x))
    lwf_term = LwF.loss(lwf, net, batch, net(batch.x)).item()
    assert ad.weight_attention == 0.1 and lwf_term > 0  # the default: PyCIL's attention_ratio
    assert full.item() == pytest.approx(lwf_term + 0.1 * attention.item(), rel=1e-4)


def test_attention_distillation_in_task_il_explains_the_teachers_best_old_head_and_class(streams) -> None:
    stream = streams["task"]
    net = small_net(stream, conv=True)
    batch = stream.train(2).batch(list(range(24)))
    with torch.no_grad():  # shift head 0 so that each earlier head is the best for some samples
        best = [net(batch.x, torch.full_like(batch.t, j)).amax(1) for j in (0, 1)]
        net.heads[0].bias += (best[1] - best[0]).median()
    ad = distillation_after(stream, net, task=2, weight_attention=3.0)
    teacher = copy.deepcopy(net).eval()
    perturb(net, scale=0.3)
    scores = torch.cat([teacher(batch.x, torch.full_like(batch.t, j)) for j in (0, 1)], dim=1)
    head, target = scores.argmax(1) // 2, scores.argmax(1) % 2
    assert set(head.tolist()) == {0, 1}  # both earlier heads win somewhere
    got_target, got_head = ad.old_top1(batch, multihead=True)
    assert torch.equal(got_target, target) and torch.equal(got_head, head)
    expected = normalised_l1(grad_cam(copy.deepcopy(net).eval(), batch.x, target, head),
                             grad_cam(teacher, batch.x, target, head))
    total = ad.loss(net, batch, net(batch.x, batch.t)) - LwF.loss(ad, net, batch, net(batch.x, batch.t))
    assert math.isfinite(total.item()) and total.item() == pytest.approx(3.0 * expected.item(), rel=1e-4)


def test_attention_distillation_state_is_weights_only_loadable(streams) -> None:
    stream = streams["class"]
    net = small_net(stream, conv=True)
    ad = distillation_after(stream, net, task=1)
    perturb(net)
    fresh = AttentionDistillation()
    fresh.setup(small_net(stream, conv=True, seed=7))
    fresh.load_state_dict(weights_only_copy(ad.state_dict()))
    batch = stream.train(1).batch(list(range(16)))
    assert torch.equal(ad.attention_loss(net, batch), fresh.attention_loss(net, batch))




@pytest.mark.parametrize(("overrides", "start"), [
    (["model=mlp", "strategy=saliency_replay", "strategy.explanation_map=gradcam"], "strategy: SaliencyReplay needs"),
    (["model=mlp", "strategy=attention_distillation"], "strategy: AttentionDistillation needs"),
    ([*SMALL_CNN, "strategy=saliency_replay", "strategy.gradcam_layer=backbone.1"], "strategy.gradcam_layer"),
    ([*SMALL_CNN, "strategy=attention_distillation", "strategy.gradcam_layer=conv9"], "strategy.gradcam_layer"),
])
def test_gradcam_options_without_a_conv_layer_stop_before_training(run_config, tmp_path, overrides, start) -> None:
    with pytest.raises(ConfigError) as error:
        run_config("dataset.train_samples_per_task=200", *overrides)
    assert str(error.value).startswith(start) and "\n" not in str(error.value)
    assert not (tmp_path / "checkpoints" / "last.pt").exists()  # nothing trained


# -- end to end ------------------------------------------------------------------------------
E2E = ["dataset=split_mnist", "dataset.train_samples_per_task=2000", "dataset.test_samples_per_task=300",
       "evaluation.max_samples_per_task=300", "seed=0", "checkpoint.every_epoch=false"]


@pytest.mark.parametrize("overrides", [
    [*SMALL_CNN, "strategy=saliency_replay", "dataset.scenario=class"],
    ["model=mlp", "strategy=saliency_replay", "dataset.scenario=class", "checkpoint.keep_every_task=true"],
    [*SMALL_CNN, "strategy=attention_distillation", "dataset.scenario=task"],
], ids=["saliency-gradcam", "saliency-input-gradient", "attention"])
def test_runs_end_to_end_on_split_mnist(run_config, overrides) -> None:
    summary, out = run_config(*E2E, *overrides)
    matrix = summary["accuracy_matrix"]
    assert len(matrix) == 5 and all(math.isfinite(a) for row in matrix for a in row)
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=True)["strategy"]
    if "strategy=saliency_replay" in overrides:
        maps = state["buffer"]["extras"][MAPS]
        peaks = maps.abs().amax((1, 2, 3))
        assert maps.shape == (200, 1, 28, 28)  # every buffered sample has its map, of the input's shape
        # each scaled to max |value| 1 (up to camloss's EPS); a GradCAM with no positive evidence is ReLU'd to 0
        assert (((peaks > 0.99) & (peaks < 1 + 1e-6)) | (peaks == 0)).all() and (peaks > 0).float().mean() > 0.5
        if "model=mlp" in overrides:
            assert summary["ACC"] > 0.5  # rehearsal: naive ends near 0.2 in Class-IL
            from retentive.resume.checkpoint import load_checkpoint
            from retentive.runner import run

            resumed = run(compose_config(["logger=none", "callbacks=none", *E2E, *overrides], out / "resumed"),
                          out / "resumed", resume_state=load_checkpoint(out / "checkpoints" / "after_task2.pt"))
            assert resumed["accuracy_matrix"] == matrix  # buffer, maps and generator came back exactly
    else:
        assert summary["ACC"] > 0.85 and state["teacher"]  # Task-IL, with the last task's teacher


def test_saliency_replay_with_weight_0_is_er_to_the_last_digit(run_config) -> None:
    """Storing maps draws no randomness and leaves the net as it was: only the penalty differs from ER."""
    small = ["dataset=split_mnist", "dataset.train_samples_per_task=500", "dataset.test_samples_per_task=100",
             "evaluation.max_samples_per_task=100", "model=mlp", "dataset.scenario=class", "seed=0",
             "checkpoint.every_epoch=false"]
    er, _ = run_config(*small, "strategy=er")
    saliency, out = run_config(*small, "strategy=saliency_replay", "strategy.weight=0")
    assert saliency["accuracy_matrix"] == er["accuracy_matrix"] and er["ACC"] > 0.3
    assert torch.load(out / "checkpoints" / "last.pt", weights_only=True)["strategy"]["buffer"]["extras"][MAPS].shape[0] == 200
