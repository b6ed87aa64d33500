"""Each penalty, trained on real MNIST slices under Lightning, lowers its own measure vs vanilla;
and the double-backprop penalties really send gradients to the weights."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from retentive.data import DecoyMNIST, collate_batch
from retentive.explanations import CDEP, RRR, CAMLoss
from retentive.explanations.base import ExplanationLoss
from retentive.explanations.rrr import input_gradients, rrr_measure
from retentive.models import build_net, cnn_backbone
from retentive.module import ContinualModule
from retentive.strategies.naive import Naive

DATA_DIR = os.environ.get("DATA_DIR") or str(Path(__file__).resolve().parents[1] / ".." / "shared" / "data")


@pytest.fixture(scope="module")
def stream() -> DecoyMNIST:
    if not (Path(DATA_DIR) / "MNIST" / "raw").is_dir():
        pytest.skip(f"MNIST not found under {DATA_DIR} (set DATA_DIR)")
    return DecoyMNIST(data_dir=DATA_DIR, train_samples_per_task=1024, val_fraction=0.25, mean=0.5, std=0.5)


def small_module(stream: DecoyMNIST, explanation: ExplanationLoss | None) -> ContinualModule:
    L.seed_everything(0, verbose=False)
    net = build_net(partial(cnn_backbone, channels=[6, 12], hidden=32), stream.input_shape, stream.head_sizes, False)
    return ContinualModule(net, Naive(), 1, partial(torch.optim.Adam, lr=2e-3), explanation)


def fit(module: ContinualModule, stream: DecoyMNIST, epochs: int = 2) -> ContinualModule:
    loader = DataLoader(stream.train(0), batch_size=64, shuffle=True, collate_fn=collate_batch,
                        generator=torch.Generator().manual_seed(0))
    L.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False, deterministic=True).fit(module, loader)
    return module.eval()


def rrr_on_val(module: ContinualModule, stream: DecoyMNIST) -> float:
    x, _, _, mask = stream.val(0)[list(range(len(stream.val(0))))]
    return rrr_measure(input_gradients(module.net, x, None, create_graph=False), mask).item()


def loss_on_val(loss: ExplanationLoss, module: ContinualModule, stream: DecoyMNIST) -> float:
    x, y, t, mask = stream.val(0)[list(range(len(stream.val(0))))]
    return loss(module.net, x, y, mask, t).item()


@pytest.fixture(scope="module")
def vanilla(stream: DecoyMNIST) -> ContinualModule:
    return fit(small_module(stream, None), stream)


def test_rrr_training_lowers_masked_input_gradients(stream: DecoyMNIST, vanilla: ContinualModule) -> None:
    penalised = fit(small_module(stream, RRR(weight=10.0)), stream)
    assert rrr_on_val(penalised, stream) < 0.2 * rrr_on_val(vanilla, stream)


def test_cdep_training_lowers_patch_relevance(stream: DecoyMNIST, vanilla: ContinualModule) -> None:
    penalised = fit(small_module(stream, CDEP(weight=1.0)), stream)
    assert loss_on_val(CDEP(), penalised, stream) < 0.2 * loss_on_val(CDEP(), vanilla, stream)


def test_camloss_training_moves_gradcam_to_the_centre(stream: DecoyMNIST, vanilla: ContinualModule) -> None:
    penalised = fit(small_module(stream, CAMLoss(weight=1.0)), stream)
    assert loss_on_val(CAMLoss(), penalised, stream) < 0.5 * loss_on_val(CAMLoss(), vanilla, stream)


class GradRecorder(L.Callback):
    """Copies every parameter's gradient of the first training step."""

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if not hasattr(self, "grads"):
            self.grads = {n: p.grad.detach().clone() for n, p in pl_module.net.named_parameters()}


@pytest.mark.parametrize("make", [lambda: RRR(weight=10.0), lambda: CAMLoss(weight=3.0), lambda: CDEP(weight=2.0)],
                         ids=["rrr", "camloss", "cdep"])
def test_penalty_gradients_reach_the_weights_under_lightning(stream: DecoyMNIST, make) -> None:
    """Lightning's gradient with the penalty minus without == weight * d(penalty)/d(weights)."""
    batch = stream.train(0)[list(range(64))]
    recorded = {}
    for name, explanation in (("plain", None), ("penalised", make())):
        module = small_module(stream, explanation)
        recorder = GradRecorder()
        L.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                  enable_model_summary=False, callbacks=[recorder]).fit(
            module, DataLoader([batch], batch_size=None, collate_fn=lambda b: b))
        recorded[name] = recorder.grads
    reference = small_module(stream, None)  # same seed -> same initial weights
    explanation = make()
    x, y, t, mask = batch
    penalty = explanation(reference.net, x, y, mask, t)
    names = [n for n, _ in reference.net.named_parameters()]
    expected = torch.autograd.grad(explanation.weight * penalty, list(reference.net.parameters()), allow_unused=True)
    first_conv = "backbone.0.weight"
    for name, grad in zip(names, expected, strict=True):
        if grad is None:
            continue
        torch.testing.assert_close(recorded["penalised"][name] - recorded["plain"][name], grad, rtol=1e-3, atol=1e-6)
    conv_grad = dict(zip(names, expected, strict=True))[first_conv]
    assert conv_grad is not None and conv_grad.abs().sum() > 0  # the penalty moves the first conv layer
