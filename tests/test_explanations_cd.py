"""Contextual decomposition: exact on random architectures, clear errors on unsupported layers."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

from retentive.errors import ConfigError
from retentive.explanations.cdep import CDEP, cdep_score, sample_pixels
from retentive.explanations.contextual_decomposition import decompose
from retentive.models.cnn import cnn_backbone
from retentive.models.continual_net import ContinualNet
from retentive.models.mlp import mlp_backbone


def random_backbone(rng: random.Random, in_channels: int, size: int) -> tuple[nn.Sequential, int]:
    """A random conv stack (pool kinds, kernels, strides, BN, dropout) then a random MLP head."""
    layers: list[nn.Module] = []
    channels = in_channels
    for _ in range(rng.randint(1, 3)):
        out = rng.randint(2, 6)
        kernel = rng.choice([1, 3, 5])
        layers.append(nn.Conv2d(channels, out, kernel, stride=rng.choice([1, 2]), padding=kernel // 2,
                                bias=rng.random() < 0.8))
        if rng.random() < 0.5:
            layers.append(nn.BatchNorm2d(out, track_running_stats=rng.random() < 0.7))
        layers.append(nn.ReLU())
        pool = rng.choice(["max", "max3", "avg", "none"])
        if pool == "max":
            layers.append(nn.MaxPool2d(2))
        elif pool == "max3":
            layers.append(nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=rng.random() < 0.5))
        elif pool == "avg":
            layers.append(nn.AvgPool2d(rng.choice([2, 3]), stride=rng.choice([1, 2]), padding=1))
        if rng.random() < 0.3:
            layers.append(nn.Dropout2d(0.2))
        channels = out
    if rng.random() < 0.5:
        layers.append(nn.AdaptiveAvgPool2d(rng.choice([1, 2, 3])))
    layers.append(nn.Flatten())
    with torch.no_grad():
        width = nn.Sequential(*layers).eval()(torch.zeros(2, in_channels, size, size)).shape[1]
    for _ in range(rng.randint(0, 2)):
        hidden = rng.randint(4, 16)
        layers += [nn.Linear(width, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(0.3)][: rng.choice([2, 3, 4])]
        if not isinstance(layers[-1], nn.ReLU):
            layers.append(nn.ReLU())
        width = hidden
    return nn.Sequential(*layers), width


def randomise_batch_norm(net: nn.Module, generator: torch.Generator) -> None:
    for module in net.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.weight.data.normal_(1.0, 0.5, generator=generator)
            module.bias.data.normal_(0.0, 0.5, generator=generator)
            if module.running_mean is not None:
                module.running_mean.normal_(0.0, 0.5, generator=generator)
                module.running_var.uniform_(0.5, 2.0, generator=generator)


@pytest.mark.parametrize("seed", range(8))
def test_rel_plus_irrel_equals_logits_on_random_architectures(seed: int) -> None:
    rng = random.Random(seed)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    channels, size = rng.choice([1, 3]), rng.choice([12, 17])
    backbone, width = random_backbone(rng, channels, size)
    multihead = rng.random() < 0.5
    head_sizes = [rng.randint(2, 5) for _ in range(3)] if multihead else [rng.randint(2, 10)]
    net = ContinualNet(backbone, width, head_sizes, multihead)
    randomise_batch_norm(net, generator)
    net.eval()
    x = torch.randn(9, channels, size, size, generator=generator)
    t = torch.randint(0, len(head_sizes), (9,), generator=generator)
    mask = (torch.rand(9, rng.choice([1, channels]), size, size, generator=generator) < 0.3).float()

    rel, irrel = decompose(net, x * mask, x * (1 - mask), t if multihead else None)
    logits = net(x, t if multihead else None)

    finite = torch.isfinite(logits)
    assert torch.equal(torch.isfinite(rel), finite)
    torch.testing.assert_close(rel[finite] + irrel[finite], logits[finite], rtol=1e-4, atol=1e-4)
    # both parts carry real signal, not one part holding everything
    assert rel[finite].abs().sum() > 1e-3 and irrel[finite].abs().sum() > 1e-3


def test_decomposition_is_exact_for_the_default_cnn_and_mlp() -> None:
    torch.manual_seed(0)
    for backbone, shape in ((cnn_backbone((3, 28, 28)), (3, 28, 28)), (mlp_backbone((1, 8, 8)), (1, 8, 8))):
        body, width = backbone
        net = ContinualNet(body, width, [10], False).eval()
        x = torch.randn(4, *shape)
        mask = torch.zeros(4, 1, *shape[1:])
        mask[..., :5, :5] = 1
        rel, irrel = decompose(net, x * mask, x * (1 - mask))
        torch.testing.assert_close(rel + irrel, net(x), rtol=1e-4, atol=1e-4)


def test_empty_group_gets_no_relevance_and_full_group_all() -> None:
    torch.manual_seed(1)
    body, width = cnn_backbone((1, 12, 12), channels=(4, 6), hidden=8)
    net = ContinualNet(body, width, [5], False).eval()
    x = torch.randn(3, 1, 12, 12)
    rel, irrel = decompose(net, torch.zeros_like(x), x)
    # with rel == 0 every layer's proportional bias share of rel is exactly 0
    assert rel.abs().max() == 0
    torch.testing.assert_close(irrel, net(x))
    # the paper's loss is then softmax((0, irrel))[0] = sigmoid(-irrel), averaged
    torch.testing.assert_close(cdep_score(rel, irrel), torch.sigmoid(-irrel).mean())


def test_cdep_ignores_padded_classes_of_multihead_nets() -> None:
    rel = torch.tensor([[1.0, 2.0, float("-inf")], [0.0, 0.0, 0.0]])
    irrel = torch.tensor([[0.0, 0.0, float("-inf")], [1.0, 1.0, 1.0]])
    expected = (torch.sigmoid(torch.tensor(1.0)) + torch.sigmoid(torch.tensor(2.0)) + 3 * torch.sigmoid(torch.tensor(-1.0))) / 5
    torch.testing.assert_close(cdep_score(rel, irrel), expected)


def test_sample_pixels_draws_only_masked_pixels() -> None:
    mask = torch.zeros(4, 3, 6, 6)
    mask[0, :, 2, 3] = 1
    mask[1, 1, :2, :] = 1
    mask[3, 0, 5, 5] = 1  # sample 2 has an empty mask
    blobs = sample_pixels(mask, 5, torch.Generator().manual_seed(0)).view(5, 4, 6, 6)
    assert torch.all(blobs.sum((2, 3))[:, [0, 1, 3]] == 1)
    assert torch.all(blobs[:, 2] == 0)
    assert torch.all(blobs[:, 0, 2, 3] == 1) and torch.all(blobs[:, 3, 5, 5] == 1)
    assert torch.all(blobs[:, 1, 2:] == 0)


class Square(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * x


def test_unsupported_layer_is_one_clear_config_error() -> None:
    body = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 8), Square())
    net = ContinualNet(body, 8, [3], False)
    with pytest.raises(ConfigError) as error:
        CDEP().check(net)
    message = str(error.value)
    assert "backbone.4 (Square)" in message and "\n" not in message
    with pytest.raises(ConfigError, match="Tanh"):
        CDEP().check(ContinualNet(nn.Sequential(nn.Flatten(), nn.Linear(16, 4), nn.Tanh()), 4, [2], False))
    # the default conv net passes the check
    CDEP().check(ContinualNet(*cnn_backbone((1, 28, 28)), [10], False))


@pytest.mark.parametrize("seed", range(4))
def test_reusing_the_forward_gives_the_two_pass_numbers_and_gradients(seed: int) -> None:
    """CDEP's fast path (recorded activations, rel-only propagation) == the full decomposition."""
    rng = random.Random(100 + seed)
    torch.manual_seed(seed)
    backbone, width = random_backbone(rng, 3, 16)
    backbone = nn.Sequential(*[m for m in backbone if not isinstance(m, nn.modules.batchnorm._BatchNorm)])
    multihead = seed % 2 == 1
    net = ContinualNet(backbone, width, [4, 3] if multihead else [6], multihead).eval()
    x, t = torch.randn(8, 3, 16, 16), torch.tensor([0, 1] * 4)
    mask = (torch.rand(8, 1, 16, 16) < 0.4).float()
    for blobs in (0, 3):
        results = []
        for reuse in (False, True):
            loss = CDEP(pixel_blobs=blobs, reuse_forward=reuse)
            loss(net, x, None, mask, t)  # first call only installs the recorder
            torch.manual_seed(seed)  # same pixel draws in both
            logits = net(x, t if multihead else None)  # the module's forward, recorded
            value = loss(net, x, None, mask, t)
            if reuse:
                assert loss.cache is not None and loss.cache.outputs == []  # consumed, not stale
            grads = torch.autograd.grad(value + 0 * logits[torch.isfinite(logits)].sum(), list(net.parameters()),
                                        allow_unused=True)
            results.append((value, grads))
        (slow, slow_grads), (fast, fast_grads) = results
        torch.testing.assert_close(fast, slow, rtol=1e-4, atol=1e-6)
        for a, b in zip(fast_grads, slow_grads, strict=True):
            if b is not None:  # float32 roundoff of `total - rel` vs a direct `irrel`: relative to scale
                torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3 * b.abs().max().item() + 1e-7)


def test_recorded_forward_is_used_only_for_the_same_input() -> None:
    torch.manual_seed(0)
    net = ContinualNet(*cnn_backbone((1, 12, 12), channels=(4,), hidden=8), [3], False)
    loss = CDEP()
    x, mask = torch.randn(2, 1, 12, 12), torch.ones(2, 1, 12, 12)
    loss(net, x, None, mask, None)
    net(x)
    assert loss.cache.take(net.backbone, x.clone()) is None  # another tensor: no reuse
    net(x)
    with torch.no_grad():
        net(x)  # an evaluation pass records nothing and clears the training one
    assert loss.cache.take(net.backbone, x) is None
    net(x)
    assert len(loss.cache.take(net.backbone, x)) == len(net.backbone)


def test_nets_with_the_recorder_can_be_copied_and_pickled() -> None:
    import copy
    import io

    torch.manual_seed(0)
    net = ContinualNet(*cnn_backbone((1, 12, 12), channels=(4,), hidden=8), [3], False)
    loss = CDEP()
    x, mask = torch.randn(2, 1, 12, 12), torch.ones(2, 1, 12, 12)
    loss(net, x, None, mask, None)
    net(x)  # recorded tensors with autograd history are held now
    teacher = copy.deepcopy(net)
    teacher(x)  # the copy's forward must not overwrite the original's record
    assert len(loss.cache.take(net.backbone, x)) == len(net.backbone)
    buffer = io.BytesIO()
    torch.save(net, buffer)
    buffer.seek(0)
    restored = torch.load(buffer, weights_only=False)
    torch.testing.assert_close(restored(x), net(x))


def test_fast_path_reuses_the_forwards_max_pool_indices(monkeypatch: pytest.MonkeyPatch) -> None:
    """The argmax comes from the training forward; the net's outputs and a removed cache are as before."""
    import retentive.explanations.contextual_decomposition as cd

    torch.manual_seed(0)
    net = ContinualNet(*cnn_backbone((1, 12, 12), channels=(4, 6), hidden=8), [3], False)
    x, mask = torch.randn(5, 1, 12, 12), (torch.rand(5, 1, 12, 12) < 0.3).float()
    plain = net(x)
    loss = CDEP()
    slow = loss(net, x, None, mask, None)  # installs the recorder: full two-part decomposition
    pools = [m for m in net.backbone if isinstance(m, nn.MaxPool2d)]
    assert all(m.return_indices for m in pools)
    torch.testing.assert_close(net(x), plain)  # the hook hands the next layer the values alone
    monkeypatch.setattr(cd, "_pool_argmax", lambda *a: pytest.fail("max-pool argmax recomputed"))
    fast = loss(net, x, None, mask, None)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-7)
    loss.cache.remove()
    assert not any(m.return_indices for m in pools)
    torch.testing.assert_close(net(x), plain)
