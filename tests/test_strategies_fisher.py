"""Vectorised per-sample importances equal a per-sample loop, on real digits, MLP and CNN (+BN)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from retentive.data import SplitDigits
from retentive.errors import ConfigError
from retentive.models import ContinualNet, cnn_backbone, mlp_backbone
from retentive.strategies import EWC, MAS
from retentive.strategies.fisher import fisher_sums
from retentive.strategies.mas import MAS as MASClass


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    stream = SplitDigits(scenario="task", seed=0)
    x0, y0, t0 = stream.train(0).batch(range(24))
    x1, y1, t1 = stream.train(1).batch(range(16))
    return torch.cat([x0, x1]), torch.cat([y0, y1]), torch.cat([t0, t1])


def _net(kind: str, multihead: bool) -> ContinualNet:
    torch.manual_seed(0)
    if kind == "mlp":
        body, width = mlp_backbone((1, 8, 8), (32, 16))
    else:
        body, width = cnn_backbone((1, 8, 8), (4, 6), 3, 16, batch_norm=True)
        for module in body.modules():  # non-trivial running statistics: eval-mode BN must be used
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_()
                module.running_var.uniform_(0.5, 2.0)
                module.weight.data.normal_()
    return ContinualNet(body, width, [2, 3] if multihead else [4], multihead)


def _loop_fisher(net: ContinualNet, x, y, t, kind: str, labels=None) -> dict[str, torch.Tensor]:
    """Reference: one backward per sample (and per class for the exact Fisher)."""
    params = dict(net.named_parameters())
    totals = {n: torch.zeros_like(p) for n, p in params.items()}
    net.eval()
    for i in range(len(x)):
        log_probs = F.log_softmax(net(x[i : i + 1], t[i : i + 1]), dim=1)[0]
        if kind == "exact":
            classes = [(c, log_probs[c].exp().item()) for c in range(len(log_probs)) if torch.isfinite(log_probs[c])]
        else:
            classes = [(int((y if kind == "empirical" else labels)[i]), 1.0)]
        for c, weight in classes:
            grads = torch.autograd.grad(log_probs[c], list(params.values()), retain_graph=True, allow_unused=True)
            for name, g in zip(params, grads, strict=True):
                if g is not None:
                    totals[name] += weight * g.square()
    return totals


def _assert_close(fast: dict, slow: dict) -> None:
    for name in slow:
        scale = slow[name].abs().max().clamp_min(1e-12)
        assert ((fast[name] - slow[name]).abs().max() / scale).item() < 1e-5, name


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
@pytest.mark.parametrize("multihead", [False, True])
@pytest.mark.parametrize("kind", ["exact", "empirical"])
def test_per_sample_fisher_matches_loop(digits, arch: str, multihead: bool, kind: str) -> None:
    x, y, t = digits
    t = t if multihead else torch.zeros_like(t)
    net = _net(arch, multihead)
    params = dict(net.named_parameters())
    batches = [(x[:15], y[:15], t[:15]), (x[15:], y[15:], t[15:])]  # two batches: sums accumulate
    fast, count = fisher_sums(net, params, batches, kind)
    assert count == len(x)
    _assert_close(fast, _loop_fisher(net, x, y, t, kind))


def test_sampled_fisher_matches_loop_with_the_same_labels(digits) -> None:
    x, y, t = digits
    net = _net("mlp", True)
    params = dict(net.named_parameters())
    fast, _ = fisher_sums(net, params, [(x, y, t)], "sampled", generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        probs = F.softmax(net(x, t), dim=1)
    labels = torch.multinomial(probs, 1, generator=torch.Generator().manual_seed(3)).squeeze(1)
    _assert_close(fast, _loop_fisher(net, x, y, t, "sampled", labels))


def test_exact_fisher_of_the_output_bias_is_p_times_one_minus_p(digits) -> None:
    """Closed form: Σ_c p_c (e_c − p)_k² = p_k (1 − p_k) for the logits' bias."""
    x, y, t = digits
    net = _net("mlp", False)
    params = {"heads.0.bias": net.heads[0].bias}
    fast, count = fisher_sums(net, params, [(x, y, t)], "exact")
    with torch.no_grad():
        p = F.softmax(net(x, t), dim=1)
    torch.testing.assert_close(fast["heads.0.bias"] / count, (p * (1 - p)).mean(0), rtol=1e-5, atol=1e-7)


def test_batched_fisher_with_batches_of_one_is_the_empirical_fisher(digits) -> None:
    x, y, t = digits
    net = _net("cnn", False)
    t = torch.zeros_like(t)
    params = dict(net.named_parameters())
    ones = [(x[i : i + 1], y[i : i + 1], t[i : i + 1]) for i in range(len(x))]
    batched, _ = fisher_sums(net, params, ones, "batched")
    empirical, _ = fisher_sums(net, params, [(x, y, t)], "empirical")
    _assert_close(batched, empirical)
    # with one big batch the squared mean gradient is much smaller than the mean squared one
    big, _ = fisher_sums(net, params, [(x, y, t)], "batched")
    total = sum(v.sum() for v in big.values()) / sum(v.sum() for v in empirical.values())
    assert total.item() < 0.9


def test_num_examples_caps_the_examples_used(digits) -> None:
    x, y, t = digits
    net = _net("mlp", True)
    params = dict(net.named_parameters())
    capped, count = fisher_sums(net, params, [(x[:15], y[:15], t[:15]), (x[15:], y[15:], t[15:])], "exact", 20)
    assert count == 20
    _assert_close(capped, _loop_fisher(net, x[:20], y[:20], t[:20], "exact"))


def test_mas_matches_loop(digits) -> None:
    x, y, t = digits
    net = _net("cnn", True)
    strategy = MASClass(lambda_=1.0, include_heads=True)
    params = strategy.protected(net)

    omega = strategy.compute_importance(net, 0, [(x, y, t)], params)
    net.eval()
    reference = {n: torch.zeros_like(p) for n, p in params.items()}
    for i in range(len(x)):
        grads = torch.autograd.grad(net(x[i : i + 1], t[i : i + 1]).square().sum(), list(params.values()),
                                    allow_unused=True)
        for name, g in zip(params, grads, strict=True):
            if g is not None:
                reference[name] += g.abs() / len(x)
    _assert_close(omega, reference)


def test_bad_arguments_fail_in_the_constructor_with_one_line() -> None:
    with pytest.raises(ConfigError, match=r"strategy.fisher: unknown Fisher kind 'diagonal'") as error:
        EWC(lambda_=1.0, fisher="diagonal")
    assert "\n" not in str(error.value) and "exact" in str(error.value)
    with pytest.raises(ConfigError, match=r"strategy.lambda_: must be a number >= 0, got -1"):
        MAS(lambda_=-1)
    with pytest.raises(ConfigError, match="strategy.num_examples"):
        EWC(num_examples=0)
