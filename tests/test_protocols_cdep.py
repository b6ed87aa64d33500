"""Authors' protocols (issue 9): CDEP's net and data options, early stopping with restore, Hsu 2018 configs."""

from __future__ import annotations

import glob
from functools import partial
from pathlib import Path

import lightning as L
import pytest
import torch
from omegaconf import OmegaConf

from retentive.config import compose_config
from retentive.data.color_mnist import ColorMNIST
from retentive.data.spurious import class_palette
from retentive.explanations.cdep import CDEP
from retentive.models.cnn import cnn_backbone
from retentive.models.continual_net import build_net
from retentive.runner import ContinualRun, build_network
from retentive.schema import check_config
from retentive.validation import build
from tests.conftest import needs_mnist

CONF = Path(__file__).resolve().parents[1] / "conf" / "experiment"
NEW_EXPERIMENTS = sorted(Path(p).stem for pattern in ("cdep2020_*", "camloss_spatial_*", "hsu2018_*")
                         for p in glob.glob(str(CONF / f"{pattern}.yaml")))


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(("experiment", "channels", "hidden", "expected"), [
    # conv1 (20*C*25+20) + conv2 (50*20*25+50) + fc1 (800*h+h) + fc2 (h*10+10)
    ("cdep2020_decoy_cdep", 1, 256, 520 + 25050 + 205056 + 2570),
    ("cdep2020_color_cdep", 3, 500, 1520 + 25050 + 400500 + 5010),
])
def test_cdep_net_matches_the_authors_definition(tmp_path, experiment, channels, hidden, expected) -> None:
    cfg = compose_config([f"experiment={experiment}"], tmp_path)
    net = build_net(build(cfg.model.backbone, "model.backbone"), (channels, 28, 28), [10], False)
    convs = [m for m in net.backbone if isinstance(m, torch.nn.Conv2d)]
    assert [c.padding for c in convs] == [(0, 0), (0, 0)]
    assert net.backbone[-2].in_features == 800 and net.backbone[-2].out_features == hidden
    assert n_params(net) == expected
    assert net(torch.zeros(7, channels, 28, 28)).shape == (7, 10)


def test_unpadded_net_on_too_small_input_is_a_config_error() -> None:
    with pytest.raises(Exception, match="too small"):
        cnn_backbone((1, 8, 8), padding=0)


def test_cdep_sum_over_blobs_is_blob_count_times_the_mean() -> None:
    torch.manual_seed(0)
    net = build_net(partial(cnn_backbone, channels=(4,), kernel_size=3, hidden=8), (1, 12, 12), [5], False)
    x, mask = torch.randn(6, 1, 12, 12), (torch.rand(6, 1, 12, 12) > 0.5).float()
    y, t = torch.zeros(6, dtype=torch.long), torch.zeros(6, dtype=torch.long)
    torch.manual_seed(1)
    mean = CDEP(pixel_blobs=4, reuse_forward=False)(net, x, y, mask, t)
    torch.manual_seed(1)
    summed = CDEP(pixel_blobs=4, reuse_forward=False, reduction="sum_blobs")(net, x, y, mask, t)
    assert summed.item() == pytest.approx(4 * mean.item(), rel=1e-5)
    with pytest.raises(Exception, match="reduction"):
        CDEP(reduction="max")


def test_cdep_score_falls_with_a_logit_shift_that_changes_no_prediction() -> None:
    """Why the ColorMNIST penalty switches itself off (docs/reproductions.md): the score is softmax(rel, irrel)
    per logit, so adding the same weight vector to every class's row of the last layer — a shift of all 10
    logits that the classifier's softmax does not see — adds far more to `irrel` (the rest of the image) than
    to `rel` (one pixel) and drives the score to 0. Trained ColorMNIST nets end with irrel ≈ +120 on every
    logit (docs/cdep_penalty.csv)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.images[:64], dtype=torch.float32).unsqueeze(1) / 16.0
    y, t = torch.tensor(digits.target[:64]), torch.zeros(64, dtype=torch.long)
    torch.manual_seed(0)
    net = build_net(partial(cnn_backbone, channels=(8,), kernel_size=3, hidden=32), (1, 8, 8), [10], False).eval()
    loss = CDEP(pixel_blobs=4, reuse_forward=False, reduction="sum_blobs", pixel_draw="per_batch")

    def score_and_predictions() -> tuple[float, torch.Tensor]:
        torch.manual_seed(1)  # the same 4 pixels each time
        with torch.no_grad():
            return loss(net, x, y, (x > 0).float(), t).item(), net(x).argmax(1)

    before, predicted = score_and_predictions()
    with torch.no_grad():
        net.heads[0].weight += 10.0
    after, predicted_after = score_and_predictions()
    assert torch.equal(predicted, predicted_after)
    assert before > 1.0  # 4 blobs at about one half each for an untrained net
    assert after < 0.01 * before  # the penalty is all but gone; nothing the net predicts changed


@needs_mnist
def test_color_mnist_standardisation_and_test_coloured_validation() -> None:
    import os

    data_dir = os.environ["DATA_DIR"]
    plain = ColorMNIST(data_dir=data_dir, train_samples_per_task=2000, test_samples_per_task=200)
    authors = ColorMNIST(data_dir=data_dir, train_samples_per_task=2000, test_samples_per_task=200,
                         standardize=True, val_colours="test")
    x = authors.train(0).batch().x  # standardised with the train split's own per-channel stats
    assert x.mean(dim=(0, 2, 3)).abs().max() < 1e-3
    assert (x.std(dim=(0, 2, 3)) - 1).abs().max() < 1e-3
    assert authors.test(0).batch().x.mean(dim=(0, 2, 3)).abs().max() < 0.5  # same stats reach the test split
    assert torch.equal(plain.train(0).images, authors.train(0).images)  # train untouched by the val option

    palette = class_palette(10).float()
    palette = palette / palette.norm(dim=1, keepdim=True)

    def colour_index(images: torch.Tensor) -> torch.Tensor:
        sums = images.float().sum(dim=(2, 3))
        return (sums / sums.norm(dim=1, keepdim=True) @ palette.T).argmax(dim=1)

    y = plain.val(0).labels
    assert torch.equal(authors.val(0).labels, y)
    assert torch.equal(colour_index(plain.val(0).images), y)  # default: coloured like train
    assert torch.equal(colour_index(authors.val(0).images), 9 - y)  # authors: coloured like test
    assert torch.equal(authors.val(0).masks, plain.val(0).masks)


class Snapshots(L.Callback):
    """The net's weights after every validation pass (after the early-stopping callback saw it)."""

    def __init__(self) -> None:
        self.states: list[dict[str, torch.Tensor]] = []

    def on_validation_end(self, trainer, module) -> None:
        if not trainer.sanity_checking:
            self.states.append({k: v.clone() for k, v in module.net.state_dict().items()})


@pytest.mark.parametrize("restore_best", [True, False])
def test_early_stopping_restores_the_best_validation_weights(tmp_path, restore_best) -> None:
    cfg = compose_config([
        "dataset=split_digits", "dataset.class_groups=[[0,1,2,3,4,5,6,7,8,9]]", "dataset.train_samples_per_task=40",
        "dataset.val_fraction=0.5", "model=mlp", "model.optimizer.lr=0.01", "schedule.epochs_per_task=30",
        "evaluation.max_samples_per_task=null", "callbacks=early_stopping", "callbacks.early_stopping.patience=1",
        f"callbacks.early_stopping.restore_best={restore_best}", "logger=none", "loader.batch_size=10",
    ], tmp_path)
    run = ContinualRun(cfg, tmp_path)
    snapshots = Snapshots()
    run.trainer.callbacks.append(snapshots)
    stopper = next(c for c in run.trainer.callbacks if type(c).__name__ == "EarlyStoppingRestore")
    run.fit()
    losses = [loss for _, loss in stopper.history]
    best = min(range(len(losses)), key=losses.__getitem__)
    assert stopper.stopped and len(losses) < 30  # the val loss rose: training ended early
    assert len(losses) == best + 1 + 2  # patience 1: stops at the second epoch without improvement
    assert losses[-1] > losses[best]
    final = run.module.net.state_dict()
    expected = snapshots.states[best] if restore_best else snapshots.states[-1]
    assert all(torch.equal(final[k], expected[k]) for k in final)
    assert not all(torch.equal(final[k], snapshots.states[best if not restore_best else -1][k]) for k in final)


def test_a_task_stopped_early_leaves_the_next_task_its_own_epochs(tmp_path) -> None:
    # min_delta huge: every epoch after a task's first is "no improvement", so patience 0 stops each task
    # after 2 of its 4 epochs; the next task must still start at its own epoch 0 and stop after 2 again
    cfg = compose_config([
        "dataset=split_digits", "dataset.train_samples_per_task=40", "dataset.class_groups=[[0,1],[2,3],[4,5]]",
        "model=mlp",
        "schedule.epochs_per_task=4", "callbacks=early_stopping", "callbacks.early_stopping.patience=0",
        "callbacks.early_stopping.min_delta=1000000", "callbacks.early_stopping.restore_best=false",
        "logger=none", "loader.batch_size=10",
    ], tmp_path)
    run = ContinualRun(cfg, tmp_path)
    epochs = []
    run.trainer.callbacks.append(type("Epochs", (L.Callback,), {"on_train_epoch_start": lambda self, trainer, module:
                                       epochs.append((module.current_task, trainer.current_epoch))})())
    stopper = next(c for c in run.trainer.callbacks if type(c).__name__ == "EarlyStoppingRestore")
    run.fit()
    assert [task for task, _ in stopper.history] == [0, 0, 1, 1, 2, 2]
    assert epochs == [(0, 0), (0, 1), (1, 4), (1, 5), (2, 8), (2, 9)]  # each task from its own boundary
    assert run.trainer.current_epoch == 12


@needs_mnist
@pytest.mark.parametrize("experiment", NEW_EXPERIMENTS)
def test_new_experiments_compose_check_and_build(tmp_path, experiment) -> None:
    cfg = compose_config([f"experiment={experiment}", "dataset.train_samples_per_task=30",
                          "dataset.test_samples_per_task=30"], tmp_path)
    check_config(cfg)
    stream = _stream(OmegaConf.to_yaml(cfg.dataset), cfg)
    net = build_network(cfg, stream)
    assert len(stream.train(0)) == 30 and len(stream.test(0)) == 30
    if experiment.startswith("hsu2018"):
        assert stream.input_shape == (1, 32, 32) and stream.num_tasks == 5
        assert [h.out_features for h in net.heads] == {"task": [2] * 5, "domain": [2], "class": [10]}[
            cfg.dataset.scenario]
    else:
        assert stream.num_tasks == 1 and stream.has_masks
    assert net(stream.train(0).batch().x[:4], torch.zeros(4, dtype=torch.long)).shape[0] == 4


_STREAMS: dict[str, object] = {}


def _stream(key: str, cfg):
    """Streams are shared between configs with the same dataset section (MNIST is painted only once)."""
    if key not in _STREAMS:
        _STREAMS[key] = build(cfg.dataset, "dataset")
    return _STREAMS[key]


def test_per_batch_pixel_draw_shares_each_pixel_and_follows_mask_frequency() -> None:
    """The authors' ColorMNIST draw: one pixel per blob for the whole batch, by how often it is marked."""
    from retentive.explanations.cdep import sample_batch_pixels

    mask = torch.zeros(4, 3, 5, 5)
    mask[:3, :, 1, 2] = 1  # marked in 3 of the 4 samples
    mask[3, 0, 4, 0] = 1   # marked in 1 of them
    blobs = sample_batch_pixels(mask, 4000, torch.Generator().manual_seed(0)).view(4000, 4, 5, 5)
    assert torch.all(blobs.sum((2, 3)) == 1)  # one pixel per blob and sample, background included
    assert torch.all(blobs == blobs[:, :1])  # the same pixel for every sample of the batch
    at_a, at_b = blobs[:, 0, 1, 2].sum().item(), blobs[:, 0, 4, 0].sum().item()
    assert at_a + at_b == 4000  # unmarked pixels are never drawn
    assert at_a / 4000 == pytest.approx(0.75, abs=0.03)
    with pytest.raises(Exception, match="explanation.pixel_draw"):
        CDEP(pixel_draw="per_pixel")


def test_authors_colour_protocol_draws_per_batch(tmp_path) -> None:
    cfg = compose_config(["experiment=cdep2020_color_cdep"], tmp_path)
    loss = build(cfg.explanation, "explanation")
    assert (loss.pixel_draw, loss.pixel_blobs, loss.reduction) == ("per_batch", 8, "sum_blobs")


def _cd_pool_first(net, rel: torch.Tensor, irrel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """An independent CD of the CDEP net in the authors' order (conv, max-pool, ReLU), pooling the way their
    cd.py does: a 0/1 mask of the window argmax of the total, average-pooled and scaled by the window size."""
    convs = [m for m in net.backbone if isinstance(m, torch.nn.Conv2d)]
    linears = [m for m in net.backbone if isinstance(m, torch.nn.Linear)] + [net.heads[0]]

    def affine(module, rel, irrel):
        bias = module(torch.zeros_like(irrel))
        rel, irrel = module(rel) - bias, module(irrel) - bias
        share = rel.abs() / (rel.abs() + irrel.abs() + 1e-20)
        return rel + share * bias, irrel + (1 - share) * bias

    def relu(rel, irrel):
        return torch.relu(rel), torch.relu(rel + irrel) - torch.relu(rel)

    def pool(rel, irrel):
        total, index = torch.nn.functional.max_pool2d(rel + irrel, 2, return_indices=True)
        mask = torch.zeros_like(rel).flatten(2).scatter(2, index.flatten(2), 1.0).view_as(rel)  # unpooled ones
        return [torch.nn.functional.avg_pool2d(mask * part, 2) * 4 for part in (rel, irrel)]

    for conv in convs:
        rel, irrel = relu(*pool(*affine(conv, rel, irrel)))
    rel, irrel = rel.flatten(1), irrel.flatten(1)
    rel, irrel = relu(*affine(linears[0], rel, irrel))
    return affine(linears[1], rel, irrel)


def test_pool_first_cdep_net_decomposes_and_differentiates_like_the_authors_order() -> None:
    """`pool_before_relu`: the same forward; CD values and gradients equal an independent decomposition in
    the authors' order, while the ReLU-first net gives the same forward but other CD gradients."""
    from retentive.explanations.contextual_decomposition import decompose

    torch.manual_seed(0)
    first = build_net(partial(cnn_backbone, hidden=32, padding=0, pool_before_relu=True), (3, 28, 28), [10], False)
    relu_first = build_net(partial(cnn_backbone, hidden=32, padding=0), (3, 28, 28), [10], False)
    relu_first.load_state_dict(first.state_dict())  # same parameters, the pool and ReLU swapped
    assert [type(m).__name__ for m in first.backbone][:3] == ["Conv2d", "MaxPool2d", "ReLU"]
    x = torch.randn(6, 3, 28, 28)
    blob = torch.zeros(1, 1, 28, 28)
    blob[..., 10, 12] = 1
    torch.testing.assert_close(first(x), relu_first(x))

    def score_and_grads(net, decomposition):
        rel, irrel = decomposition(net, x * blob, x * (1 - blob))
        score = torch.softmax(torch.stack([rel.flatten(), irrel.flatten()], 1), 1)[:, 0].mean()
        return score, torch.autograd.grad(score, list(net.parameters()))

    ours, ours_grads = score_and_grads(first, decompose)
    reference, reference_grads = score_and_grads(first, _cd_pool_first)
    torch.testing.assert_close(ours, reference)
    for a, b in zip(ours_grads, reference_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    _, other_grads = score_and_grads(relu_first, decompose)
    gap = max(float((a - b).abs().max() / b.abs().max()) for a, b in zip(other_grads, reference_grads, strict=True))
    assert gap > 0.05  # the order is not cosmetic for the penalty's gradient
    # the fast path (recorded forward activations and pool indices) decomposes the pool-first net the same way
    loss, mask, t = CDEP(reuse_forward=True), blob.expand(6, 1, 28, 28), torch.zeros(6, dtype=torch.long)
    loss(first, x, None, mask, t)  # installs the recorder
    first(x)
    torch.testing.assert_close(loss(first, x, None, mask, t), CDEP(reuse_forward=False)(first, x, None, mask, t))
