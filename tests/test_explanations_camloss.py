"""CAM loss: differentiable GradCAM equals Captum's and an independent implementation, gradients
included; the centre kernel has the documented values."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from captum.attr import LayerAttribution, LayerGradCam
from torch import Tensor

from retentive.errors import ConfigError
from retentive.explanations.camloss import CAMLoss, centre_weight, grad_cam, upsampled_cam
from retentive.models.cnn import cnn_backbone
from retentive.models.continual_net import ContinualNet
from retentive.models.mlp import mlp_backbone


def reference_grad_cam(net: ContinualNet, x: Tensor, y: Tensor, t: Tensor | None) -> Tensor:
    """GradCAM written out by hand: hook the last conv output, grad of the label logits, weight, ReLU."""
    store = {}
    handle = net.last_conv().register_forward_hook(lambda m, i, o: store.setdefault("act", o))
    logits = net(x, t)
    handle.remove()
    act = store["act"]
    (grad,) = torch.autograd.grad(logits.gather(1, y.view(-1, 1)).sum(), act, create_graph=True)
    return F.relu((grad.mean((2, 3), keepdim=True) * act).sum(1, keepdim=True))


@pytest.fixture
def setup() -> tuple[ContinualNet, Tensor, Tensor, Tensor]:
    torch.manual_seed(0)
    net = ContinualNet(*cnn_backbone((3, 20, 20), channels=(4, 6), hidden=16), [3, 4], multihead=True)
    x = torch.randn(6, 3, 20, 20)
    t = torch.tensor([0, 1, 0, 1, 1, 0])
    y = torch.tensor([2, 3, 0, 1, 0, 1])
    return net, x, y, t


def test_grad_cam_equals_captum_and_a_hand_written_reference(setup) -> None:
    net, x, y, t = setup
    ours = grad_cam(net, x, y, t)
    captum = LayerGradCam(net, net.last_conv()).attribute(x, target=y, additional_forward_args=(t,),
                                                          relu_attributions=True)
    torch.testing.assert_close(ours, captum)
    torch.testing.assert_close(ours, reference_grad_cam(net, x, y, t))
    upsampled = LayerAttribution.interpolate(captum, (20, 20), interpolate_mode="bilinear")
    expected = upsampled / (upsampled.flatten(1).amax(1).view(-1, 1, 1, 1) + 1e-8)
    torch.testing.assert_close(upsampled_cam(net, x, y, t), expected)


def test_grad_cam_is_differentiable_like_the_reference(setup) -> None:
    """Double backprop: the weights' gradient through Captum's GradCAM equals the hand-written one's."""
    net, x, y, t = setup
    params = list(net.backbone.parameters())
    ours = torch.autograd.grad(grad_cam(net, x, y, t).pow(2).sum(), params)
    reference = torch.autograd.grad(reference_grad_cam(net, x, y, t).pow(2).sum(), params)
    for a, b in zip(ours, reference, strict=True):
        torch.testing.assert_close(a, b)
    assert ours[0].abs().sum() > 0


def test_centre_weight_is_one_minus_gaussian_of_centre_distance() -> None:
    w = centre_weight(5, 5, sigma=0.25)
    assert w[2, 2] == 0
    d2 = (2 / 5) ** 2 * 2  # corner: 2 pixels off in both axes, side 5
    assert math.isclose(w[0, 0].item(), 1 - math.exp(-d2 / (2 * 0.25**2)), rel_tol=1e-6)
    assert w[0, 2] < w[0, 0] and w[1, 2] < w[0, 2]
    assert centre_weight(5, 5, sigma=1.0)[0, 0] < w[0, 0]  # wider Gaussian penalises less


def test_camloss_value_and_mask_region(setup) -> None:
    net, x, y, t = setup
    cam = upsampled_cam(net, x, y, t)
    kernel = centre_weight(20, 20, 0.3)
    torch.testing.assert_close(CAMLoss(sigma=0.3)(net, x, y, None, t), (kernel * cam).pow(2).mean())
    mask = torch.zeros(6, 3, 20, 20)
    mask[:, 1, :4] = 1
    masked = CAMLoss(use_mask=True)
    assert masked.needs_mask and not CAMLoss().needs_mask
    torch.testing.assert_close(masked(net, x, y, mask, t), cam[..., :4, :].pow(2).sum() / cam.numel())


def test_camloss_refuses_a_net_without_convolutions() -> None:
    net = ContinualNet(*mlp_backbone((1, 8, 8)), [10], False)
    with pytest.raises(ConfigError, match="convolutional"):
        CAMLoss().check(net)
    assert CAMLoss.needs == ("conv",)
