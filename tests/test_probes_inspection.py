"""Model inspection on a conv net trained on sklearn's digits: kernels are the layer's weights, and
gradient ascent from noise finds images its filters and classes respond to, touching no weights."""

from __future__ import annotations

import pytest
import torch

from retentive.data.split import SplitDigits
from retentive.models import build_net, cnn_backbone
from retentive.probes.inspection import (
    AscentOptions,
    ascend,
    class_objective,
    class_targets,
    filter_objective,
    kernels,
)


@pytest.fixture(scope="module")
def trained():
    stream = SplitDigits(scenario="class", class_groups=[list(range(10))], seed=0)
    torch.manual_seed(0)
    net = build_net(cnn_backbone, stream.input_shape, stream.head_sizes, False)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    train = stream.train(0).batch()
    generator = torch.Generator().manual_seed(0)
    for _ in range(150):
        rows = torch.randint(0, len(train), (64,), generator=generator)
        loss = torch.nn.functional.cross_entropy(net(train.x[rows]), train.y[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    test = stream.test(0).batch()
    assert (net.eval()(test.x).argmax(1) == test.y).float().mean() > 0.9
    return net


def test_kernels_are_the_first_filters_summed_over_input_channels(trained):
    first, second = [m for m in trained.modules() if isinstance(m, torch.nn.Conv2d)]
    assert torch.equal(kernels(first, 20), first.weight.detach()[:, 0])
    assert torch.allclose(kernels(second, 7), second.weight.detach()[:7].sum(1))


def test_class_images_from_noise_are_classified_as_their_class(trained):
    classes, heads = class_targets([10], multihead=False)
    images, start, end = ascend(class_objective(trained, classes, heads), (10, 1, 8, 8), 0.0, 1.0, AscentOptions())
    assert images.shape == (10, 1, 8, 8) and images.min() >= 0 and images.max() <= 1
    assert (end > start + 1).all()
    assert (trained(images).argmax(1) == classes).float().mean() >= 0.8
    assert all(p.grad is None for p in trained.parameters())  # only the pixels were optimised


def test_filter_images_reach_the_optimum_of_a_first_layer_unit(trained):
    """A first-layer unit is linear in its 5x5 receptive field: over pixels in [0, 1] its maximum is
    the bias plus the sum of the positive weights (ink exactly where the weight is positive)."""
    layer = next(m for m in trained.modules() if isinstance(m, torch.nn.Conv2d))
    optimum = layer.bias.detach() + layer.weight.detach().clamp_min(0).flatten(1).sum(1)
    plain = AscentOptions(steps=150, jitter=0, blur_sigma=0.0)  # no regularisers: the plain optimum
    images, start, end = ascend(filter_objective(trained, layer, 20), (20, 1, 8, 8), 0.0, 1.0, plain)
    assert torch.allclose(end, optimum, rtol=0.01), (end, optimum)
    assert (end - start > 0.1 * optimum.abs()).all()
    _, start, end = ascend(filter_objective(trained, layer, 20), (20, 1, 8, 8), 0.0, 1.0, AscentOptions())
    assert (end > start).all()  # with jitter and blur (the defaults) it still climbs, if less far on 8x8 digits


def test_multihead_targets_cover_every_head():
    classes, heads = class_targets([2, 3], multihead=True)
    assert classes.tolist() == [0, 1, 0, 1, 2] and heads.tolist() == [0, 0, 1, 1, 1]
    assert class_targets([2, 3], multihead=False)[0].tolist() == [0, 1]
