"""Captum attribution methods behind one signature: `probe.attribute(net, x, t, target) -> [N, 1, H, W]`.

Every probe takes its options as keywords (`make_probe("occlusion", window=4, stride=4)`); the
pixel-space baselines need the dataset's normalisation, given as `pixel_mean`/`pixel_std` (the
probe callback sets them from the stream; 0/1 means the model sees raw [0, 1] pixels).
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, Occlusion, Saliency
from torch import Tensor, nn

from retentive.errors import ConfigError, require
from retentive.probes.baselines import check_baseline, on_device, pixel_baseline, to_pixels


@dataclass
class Explanation:
    """`maps`: `[N, 1, H, W]` attributions summed over channels; `overlay`: what the figure lays over
    the input (None: the map itself); `delta`: IG's completeness gap per sample (None elsewhere)."""

    maps: Tensor
    overlay: Tensor | None = None
    delta: Tensor | None = None


class AttributionProbe(ABC):
    """One Captum method. Maps explain class `target` per sample (the predicted class if None)."""

    name: str = "probe"
    needs: tuple[str, ...] = ()
    unit: str = "attribution"  # what a map's value means (figure titles and colour bars)

    def __init__(self, pixel_mean: float = 0.0, pixel_std: float = 1.0) -> None:
        self.pixel_mean, self.pixel_std = pixel_mean, pixel_std

    def attribute(self, net: nn.Module, x: Tensor, t: Tensor, target: Tensor | None = None) -> Tensor:
        """`[N, 1, H, W]` maps explaining class `target` (per sample; the predicted class if None)."""
        return self.explain(net, x, t, target).maps

    def explain(self, net: nn.Module, x: Tensor, t: Tensor, target: Tensor | None = None) -> Explanation:
        """The maps with what the figures need besides them (overlay, IG's delta)."""
        if target is None:
            with torch.no_grad():
                target = net(x, t).argmax(dim=1)
        with torch.enable_grad():  # probes also run where Lightning turned gradients off
            result = self._explain(net, x.detach(), t, target)
        overlay = None if result.overlay is None else result.overlay.detach()
        delta = None if result.delta is None else result.delta.detach()
        return Explanation(result.maps.detach(), overlay, delta)

    def check(self, net: nn.Module) -> None:
        """Raise a one-line ConfigError if `net` cannot be explained with these options."""
        return None

    def baseline(self, kind: str, x: Tensor, blur_sigma: float) -> Tensor:
        return pixel_baseline(kind, x, self.pixel_mean, self.pixel_std, blur_sigma)

    @abstractmethod
    def _explain(self, net: nn.Module, x: Tensor, t: Tensor, target: Tensor) -> Explanation:
        """Captum's attribution, summed over channels to `[N, 1, H, W]`."""


def _channel_sum(values: Tensor) -> Tensor:
    return values.sum(dim=1, keepdim=True)


class SaliencyProbe(AttributionProbe):
    """Gradient of the target logit at x minus the gradient at a baseline (Simonyan et al. 2014;
    the baseline delta removes what the gradient says about *every* input). Overlay: delta ⊙ x,
    x in pixels (how much each inked pixel contributes to first order)."""

    name = "saliency"
    unit = "d logit / d pixel (at x minus at baseline)"

    def __init__(self, baseline: str = "black", abs: bool = False, blur_sigma: float = 3.0, **norm: float) -> None:
        super().__init__(**norm)
        check_baseline(baseline, "probes.captum.options.saliency.baseline", allow_none=True)
        self.baseline_kind, self.abs, self.blur_sigma = baseline, abs, blur_sigma

    def _explain(self, net, x, t, target):
        saliency = Saliency(net)
        if self.baseline_kind == "none":
            delta = saliency.attribute(x, target=target, abs=False, additional_forward_args=(t,))
        else:  # one backward pass for x and its baseline together
            both = torch.cat([x, self.baseline(self.baseline_kind, x, self.blur_sigma)])
            grads = saliency.attribute(both, target=torch.cat([target, target]), abs=False,
                                       additional_forward_args=(torch.cat([t, t]),))
            delta = grads[: len(x)] - grads[len(x):]
        if self.abs:
            delta = delta.abs()
        # the model sees (pixel - mean) / std: d logit / d pixel = d logit / d x / std
        delta = delta / on_device(self.pixel_std, delta)
        return Explanation(_channel_sum(delta), _channel_sum(delta * to_pixels(x, self.pixel_mean, self.pixel_std)))


class IntegratedGradientsProbe(AttributionProbe):
    """Integrated gradients from a pixel-space baseline (Sundararajan et al. 2017). The maps sum to
    logit(x) - logit(baseline) up to `delta`, Captum's convergence delta (reported per sample)."""

    name = "integrated_gradients"
    unit = "logit contribution"

    def __init__(self, baseline: str = "black", n_steps: int = 32, method: str = "gausslegendre",
                 internal_batch_size: int | None = 2048, blur_sigma: float = 3.0, **norm: float) -> None:
        super().__init__(**norm)
        check_baseline(baseline, "probes.captum.options.integrated_gradients.baseline")
        require(isinstance(n_steps, int) and n_steps >= 2, "probes.captum.options.integrated_gradients.n_steps",
                f"{n_steps!r} must be an integer >= 2")
        methods = ("gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle")
        require(method in methods, "probes.captum.options.integrated_gradients.method", f"'{method}' is not a rule",
                f"choose one of {', '.join(methods)}")
        self.baseline_kind, self.n_steps, self.method = baseline, n_steps, method
        self.internal_batch_size, self.blur_sigma = internal_batch_size, blur_sigma

    def _explain(self, net, x, t, target):
        attributions, delta = IntegratedGradients(net).attribute(
            x, baselines=self.baseline(self.baseline_kind, x, self.blur_sigma), target=target,
            additional_forward_args=(t,), n_steps=self.n_steps, method=self.method,
            internal_batch_size=self.internal_batch_size, return_convergence_delta=True)
        return Explanation(_channel_sum(attributions), None, delta)


class OcclusionProbe(AttributionProbe):
    """Drop of the target logit when a `window` square is replaced by the baseline, slid with
    `stride`, averaged over the windows covering each pixel (Zeiler & Fergus 2014).
    `perturbations_per_eval` occluded copies go through the net in one forward pass."""

    name = "occlusion"
    unit = "logit drop when occluded"

    def __init__(self, window: int = 4, stride: int = 4, baseline: str = "black", perturbations_per_eval: int = 64,
                 blur_sigma: float = 3.0, **norm: float) -> None:
        super().__init__(**norm)
        check_baseline(baseline, "probes.captum.options.occlusion.baseline")
        for key, value in (("window", window), ("stride", stride), ("perturbations_per_eval", perturbations_per_eval)):
            require(isinstance(value, int) and value >= 1, f"probes.captum.options.occlusion.{key}",
                    f"{value!r} must be an integer >= 1")
        require(stride <= window, "probes.captum.options.occlusion.stride", f"{stride} > window {window} leaves pixels "
                "that are never occluded", "use stride <= window")
        self.window, self.stride, self.baseline_kind = window, stride, baseline
        self.perturbations_per_eval, self.blur_sigma = perturbations_per_eval, blur_sigma

    def _explain(self, net, x, t, target):
        height, width = min(self.window, x.shape[2]), min(self.window, x.shape[3])
        attributions = Occlusion(net).attribute(
            x, sliding_window_shapes=(x.shape[1], height, width),
            strides=(x.shape[1], min(self.stride, height), min(self.stride, width)),
            baselines=self.baseline(self.baseline_kind, x, self.blur_sigma), target=target,
            additional_forward_args=(t,), perturbations_per_eval=self.perturbations_per_eval)
        return Explanation(_channel_sum(attributions))


def conv_at(net: nn.Module, layer: int | str, key: str) -> nn.Conv2d:
    """The conv layer `layer` of `net`: an index among its Conv2d layers (0 first, -1 last) or a
    module name (`backbone.3`); a one-line ConfigError if there is none."""
    named = [(name, m) for name, m in net.named_modules() if isinstance(m, nn.Conv2d)]
    if not named:
        raise ConfigError(key, "needs a conv layer but the model has none", "use model=cnn")
    if isinstance(layer, int) and -len(named) <= layer < len(named):
        return named[layer][1]
    if isinstance(layer, str) and layer in dict(named):
        return dict(named)[layer]
    raise ConfigError(key, f"the model has no conv layer {layer!r}",
                      f"give an index in [-{len(named)}, {len(named) - 1}] or one of {', '.join(n for n, _ in named)}")


class GradCamProbe(AttributionProbe):
    """GradCAM of a conv layer (the last by default), upsampled to the input (Selvaraju et al. 2017)."""

    name = "gradcam"
    needs = ("conv",)
    unit = "GradCAM (gradient-weighted activation)"

    def __init__(self, layer: int | str = -1, relu: bool = True, interpolate: str = "bilinear", **norm: float) -> None:
        super().__init__(**norm)
        require(interpolate in ("bilinear", "nearest", "bicubic"), "probes.captum.options.gradcam.interpolate",
                f"'{interpolate}' is not an upsampling mode", "choose bilinear, nearest or bicubic")
        self.layer, self.relu, self.interpolate = layer, relu, interpolate

    def check(self, net: nn.Module) -> None:
        conv_at(net, self.layer, "probes.captum.options.gradcam.layer")

    def _explain(self, net, x, t, target):
        layer = conv_at(net, self.layer, "probes.captum.options.gradcam.layer")
        cam = LayerGradCam(net, layer).attribute(x, target=target, additional_forward_args=(t,),
                                                 relu_attributions=self.relu)
        return Explanation(LayerAttribution.interpolate(cam, tuple(x.shape[2:]), interpolate_mode=self.interpolate))


PROBES: dict[str, type[AttributionProbe]] = {
    cls.name: cls for cls in (SaliencyProbe, IntegratedGradientsProbe, OcclusionProbe, GradCamProbe)
}


def make_probe(name: str, **options) -> AttributionProbe:
    """The probe `name` with `options` (its constructor's keywords); unknown names or options fail
    with one line naming the config key."""
    if name not in PROBES:
        raise ConfigError("probes.methods", f"unknown method '{name}'", f"choose from {', '.join(PROBES)}")
    cls = PROBES[name]
    knobs = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "norm")]
    for key in options:  # pixel_mean/pixel_std come from the stream, not from the config
        if key not in (*knobs, "pixel_mean", "pixel_std"):
            raise ConfigError(f"probes.captum.options.{name}.{key}", "is not an option", f"choose from {', '.join(knobs)}")
    return cls(**options)
