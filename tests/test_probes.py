"""Captum probes: wired to the right head, mask share measured right, images written per task."""

from __future__ import annotations

import pytest
import torch

from retentive.errors import ConfigError
from retentive.models import build_net, cnn_backbone, mlp_backbone
from retentive.probes import PROBES, make_probe, mask_share


def test_saliency_probe_is_the_input_gradient_of_the_predicted_logit_of_each_sample_head():
    torch.manual_seed(0)
    net = build_net(mlp_backbone, (1, 8, 8), [2, 2, 2], multihead=True).eval()
    x, t = torch.rand(6, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    maps = make_probe("saliency").attribute(net, x, t)
    for i in range(6):
        xi = x[i : i + 1].clone().requires_grad_(True)
        logits = net.heads[int(t[i])](net.features(xi))
        logits[0, logits.argmax()].backward()
        assert torch.allclose(maps[i], xi.grad.abs()[0], atol=1e-6)


def test_every_probe_gives_one_map_per_image_on_a_cnn():
    torch.manual_seed(0)
    net = build_net(cnn_backbone, (3, 12, 12), [4], multihead=False).eval()
    x, t = torch.rand(3, 3, 12, 12), torch.zeros(3, dtype=torch.long)
    for name in PROBES:
        maps = make_probe(name).attribute(net, x, t)
        assert maps.shape == (3, 1, 12, 12) and torch.isfinite(maps).all() and maps.abs().sum() > 0, name


def test_mask_share_is_the_fraction_of_attribution_inside_the_mask():
    maps = torch.zeros(1, 1, 4, 4)
    maps[0, 0, 0, 0], maps[0, 0, 3, 3] = 3.0, -1.0
    mask = torch.zeros(1, 1, 4, 4)
    mask[0, 0, 0, 0] = 1
    assert mask_share(maps, mask) == pytest.approx(0.75)
    assert mask_share(maps, torch.ones(1, 3, 4, 4)) == pytest.approx(1.0)


def test_unknown_probe_and_gradcam_without_conv_fail_before_training(run_config):
    with pytest.raises(ConfigError, match="probes.methods: unknown method 'lime'"):
        make_probe("lime")
    with pytest.raises(ConfigError, match="probes: .* needs a model with conv"):
        run_config("dataset=split_digits", "probes=gradcam", "model=mlp")


def test_probe_callback_writes_a_figure_after_every_task(run_config):
    _, out = run_config("dataset=split_digits", "probes=default", "dataset.class_groups=[[0,1],[2,3]]")
    assert sorted(p.name for p in (out / "probes").glob("*.png")) == ["after_task0.png", "after_task1.png"]
