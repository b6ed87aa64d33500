"""Backbone + heads: per-sample head routing for Task-IL, one head otherwise."""

from __future__ import annotations

import pytest
import torch

from retentive.models import build_net, cnn_backbone, mlp_backbone


def test_multihead_routes_each_sample_to_its_task_head():
    torch.manual_seed(0)
    net = build_net(mlp_backbone, (1, 8, 8), [2, 3, 2], multihead=True)
    x = torch.randn(6, 1, 8, 8)
    t = torch.tensor([0, 1, 2, 1, 0, 2])
    out = net(x, t)
    features = net.features(x)
    for i in range(6):
        head = net.heads[t[i]]
        expected = head(features[i : i + 1])[0]
        assert torch.allclose(out[i, : head.out_features], expected)
        assert torch.isinf(out[i, head.out_features :]).all()
    with pytest.raises(ValueError, match="task ids"):
        net(x)


def test_cnn_backbone_fits_small_and_large_inputs():
    for shape in [(1, 8, 8), (3, 28, 28)]:
        net = build_net(cnn_backbone, shape, [10], multihead=False)
        assert net(torch.randn(2, *shape)).shape == (2, 10)
        assert net.last_conv() is not None and net.last_conv().out_channels == 50


def test_xavier_init_draws_mammoths_uniform_bound_and_zero_biases():
    from functools import partial

    from retentive.errors import ConfigError

    torch.manual_seed(0)
    net = build_net(partial(mlp_backbone, hidden=[100, 100]), (1, 28, 28), [10], multihead=False, init="xavier")
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 3
    for layer in linears:
        fan_out, fan_in = layer.weight.shape
        bound = (6.0 / (fan_in + fan_out)) ** 0.5  # sqrt(3) * sqrt(2 / (fan_in + fan_out)), mammoth's xavier
        assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.95 * bound
        assert layer.weight.std().item() == pytest.approx(bound / 3**0.5, rel=0.05)  # uniform's std
        assert torch.count_nonzero(layer.bias) == 0
    torch.manual_seed(0)
    default = build_net(partial(mlp_backbone, hidden=[100, 100]), (1, 28, 28), [10], multihead=False)
    first = next(m for m in default.modules() if isinstance(m, torch.nn.Linear))
    assert torch.count_nonzero(first.bias) > 0  # PyTorch's default keeps uniform biases
    with pytest.raises(ConfigError, match="model.init"):
        build_net(mlp_backbone, (1, 8, 8), [2], multihead=False, init="he")
