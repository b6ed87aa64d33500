"""Captum attribution methods behind one signature: `probe.attribute(net, x, t) -> [N, 1, H, W]`."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, Occlusion, Saliency
from torch import Tensor

from retentive.errors import ConfigError
from retentive.models.continual_net import ContinualNet


class AttributionProbe(ABC):
    """One Captum method; attributions are for the predicted class, summed over input channels."""

    name: str = "probe"
    needs: tuple[str, ...] = ()

    def attribute(self, net: ContinualNet, x: Tensor, t: Tensor, target: Tensor | None = None) -> Tensor:
        """`[N, 1, H, W]` maps explaining class `target` (per sample; the predicted class if None)."""
        if target is None:
            with torch.no_grad():
                target = net(x, t).argmax(dim=1)
        maps = self._attribute(net, x.clone().requires_grad_(True), t, target)
        return maps.detach().sum(dim=1, keepdim=True)

    @abstractmethod
    def _attribute(self, net: ContinualNet, x: Tensor, t: Tensor, target: Tensor) -> Tensor:
        """Captum's attribution, shaped like `x` (or `[N, 1, H, W]`)."""


class SaliencyProbe(AttributionProbe):
    """|d logit / d input| (Simonyan et al. 2014)."""

    name = "saliency"

    def _attribute(self, net, x, t, target):
        return Saliency(net).attribute(x, target=target, additional_forward_args=(t,))


class IntegratedGradientsProbe(AttributionProbe):
    """Integrated gradients from a black baseline (Sundararajan et al. 2017)."""

    name = "integrated_gradients"

    def __init__(self, n_steps: int = 32) -> None:
        self.n_steps = n_steps

    def _attribute(self, net, x, t, target):
        return IntegratedGradients(net).attribute(x, target=target, additional_forward_args=(t,),
                                                  n_steps=self.n_steps)


class OcclusionProbe(AttributionProbe):
    """Drop in the predicted logit when a patch is zeroed (Zeiler & Fergus 2014)."""

    name = "occlusion"

    def __init__(self, window: int = 4, stride: int = 2) -> None:
        self.window, self.stride = window, stride

    def _attribute(self, net, x, t, target):
        shape = (x.shape[1], min(self.window, x.shape[2]), min(self.window, x.shape[3]))
        return Occlusion(net).attribute(x, sliding_window_shapes=shape, strides=(x.shape[1], self.stride, self.stride),
                                        target=target, additional_forward_args=(t,))


class GradCamProbe(AttributionProbe):
    """GradCAM of the last conv layer, upsampled to the input (Selvaraju et al. 2017)."""

    name = "gradcam"
    needs = ("conv",)

    def _attribute(self, net, x, t, target):
        layer = net.last_conv()
        if layer is None:
            raise ConfigError("probes", "gradcam needs a conv layer", "use model=cnn or drop gradcam")
        cam = LayerGradCam(net, layer).attribute(x, target=target, additional_forward_args=(t,), relu_attributions=True)
        return LayerAttribution.interpolate(cam, tuple(x.shape[2:]), interpolate_mode="bilinear")


PROBES: dict[str, type[AttributionProbe]] = {
    cls.name: cls for cls in (SaliencyProbe, IntegratedGradientsProbe, OcclusionProbe, GradCamProbe)
}


def make_probe(name: str) -> AttributionProbe:
    if name not in PROBES:
        raise ConfigError("probes.methods", f"unknown method '{name}'", f"choose from {', '.join(PROBES)}")
    return PROBES[name]()
