"""CAM loss (lint, "interpretability tools as feedback loops"): keep GradCAM on the image centre.

GradCAM of the label's logit at the last conv layer (Captum's LayerGradCam, differentiated through
with `create_graph=True`, so the penalty trains the weights by double backprop), upsampled to the
input, weighted by `1 - Gaussian(centre distance, sigma)` and squared-averaged. The prior "the
object is centred" needs no annotation, so the loss needs no mask; `use_mask=True` penalises the
dataset's mask region instead of the centre kernel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from captum.attr import LayerGradCam
from torch import Tensor

from retentive.errors import ConfigError
from retentive.explanations.base import ExplanationLoss
from retentive.models.continual_net import ContinualNet

EPS = 1e-8


def grad_cam(net: ContinualNet, x: Tensor, y: Tensor, t: Tensor | None, create_graph: bool = True) -> Tensor:
    """ReLU'd GradCAM `[N, 1, h, w]` of logit `y` at `net.last_conv()`, differentiable if asked."""
    layer = net.last_conv()
    if layer is None:
        raise ConfigError("explanation", "the CAM loss needs a convolutional backbone (net.last_conv() is None)",
                          "use model=cnn")
    with torch.enable_grad():
        return LayerGradCam(net, layer).attribute(
            x, target=y, additional_forward_args=(t,), relu_attributions=True,
            grad_kwargs={"create_graph": create_graph},
        )


def centre_weight(height: int, width: int, sigma: float, device: torch.device | None = None) -> Tensor:
    """`1 - exp(-d^2 / 2 sigma^2)`, d the distance to the image centre in units of the image side."""
    ys = (torch.arange(height, device=device) - (height - 1) / 2) / max(height, width)
    xs = (torch.arange(width, device=device) - (width - 1) / 2) / max(height, width)
    d2 = ys.view(-1, 1) ** 2 + xs.view(1, -1) ** 2
    return 1.0 - torch.exp(-d2 / (2 * sigma**2))


def upsampled_cam(net: ContinualNet, x: Tensor, y: Tensor, t: Tensor | None, create_graph: bool = True) -> Tensor:
    """GradCAM bilinearly upsampled to the input, each map scaled to max 1 (the shape is penalised,
    not the scale, which the net could otherwise shrink for free)."""
    cam = grad_cam(net, x, y, t, create_graph)
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)
    return cam / (cam.flatten(1).amax(1).view(-1, 1, 1, 1) + EPS)


class CAMLoss(ExplanationLoss):
    """`mean((w * cam)^2)`, w = 1 - Gaussian centre kernel (or the mask, with `use_mask`)."""

    needs = ("conv",)

    def __init__(self, weight: float = 1.0, sigma: float = 0.25, use_mask: bool = False) -> None:
        super().__init__(weight)
        self.sigma = sigma
        self.use_mask = use_mask
        self.needs_mask = use_mask

    def check(self, net: ContinualNet) -> None:
        if net.last_conv() is None:
            raise ConfigError("explanation", "the CAM loss needs a convolutional backbone (no Conv2d found)",
                              "use model=cnn")

    def region(self, x: Tensor, mask: Tensor | None) -> Tensor:
        if self.use_mask:
            assert mask is not None, "CAMLoss(use_mask=True) needs a mask"
            return mask.to(x.dtype).amax(dim=1, keepdim=True)
        return centre_weight(x.shape[-2], x.shape[-1], self.sigma, x.device).view(1, 1, *x.shape[-2:])

    def __call__(self, net: ContinualNet, x: Tensor, y: Tensor, mask: Tensor | None, t: Tensor) -> Tensor:
        cam = upsampled_cam(net, x, y, t if net.multihead else None)
        return (self.region(x, mask) * cam).pow(2).mean()
