"""Saliency replay: Remembering for the Right Reasons (Ebrahimi et al., ICLR 2021, "RRR").

Rehearsal keeps old samples; RRR also keeps, with every stored sample, the explanation the net gave
for it when it was stored, and penalises replayed samples whose explanation has drifted:

    loss += weight · mean |map_now(x_b) − map_stored(x_b)|        (L1 over a replay batch)

so the net is asked to stay right for the same reasons, not only to keep the labels. The map is
GradCAM at a conv layer (upsampled to the input) or the input gradient, of the sample's label
logit; both are computed in eval mode and scaled to max |value| 1, so the shape is compared, not
the scale (which the net could otherwise shrink for free). The current map is kept differentiable
(double backprop), so the penalty trains the weights.

`SaliencyReplayMixin` adds this to any rehearsal strategy that keeps its samples in `self.buffer`
(a `ReservoirBuffer`) and fills it with `self.buffer.add(...)` in `on_train_batch_end`:
`SaliencyReplay` is ER + saliency replay; DER++ + saliency replay is
`class SaliencyDERPP(SaliencyReplayMixin, DERPP)` and a yaml naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from captum.attr import LayerGradCam
from torch import Tensor, nn

from retentive.data.batch import Batch
from retentive.errors import ConfigError
from retentive.explanations.camloss import EPS, grad_cam
from retentive.strategies.base import device_of
from retentive.strategies.buffer import ReservoirBuffer
from retentive.strategies.der import DERpp
from retentive.strategies.er import ER

EXPLANATION_MAPS = ("auto", "gradcam", "input_gradient")
MAPS = "maps"  # the buffer extra holding the stored explanation maps
ROW = "row"  # bookkeeping extra: the batch row a slot took in the running `add` (-1: none)


# -- explanation maps ---------------------------------------------------------------------
@contextmanager
def eval_mode(net: nn.Module) -> Iterator[None]:
    """Explanations are read in eval mode (no dropout noise, BatchNorm running statistics)."""
    was_training = net.training
    net.eval()
    try:
        yield
    finally:
        net.train(was_training)


def conv_layer(net: nn.Module, name: str | None) -> nn.Conv2d:
    """The Conv2d called `name` in `net` (None: `net.last_conv()`), or a one-line ConfigError."""
    if name is None:
        layer = net.last_conv()
        if layer is None:
            raise ConfigError("strategy", "GradCAM needs a convolutional backbone (the model has no Conv2d)",
                              "use model=cnn")
        return layer
    convs = [n for n, m in net.named_modules() if isinstance(m, nn.Conv2d)]
    if name not in convs:
        raise ConfigError("strategy.gradcam_layer", f"the model has no Conv2d named {name!r}",
                          f"choose one of {', '.join(convs) or '(none: use model=cnn)'} or null for the last")
    return net.get_submodule(name)


def layer_cam(net: nn.Module, layer_name: str | None, x: Tensor, y: Tensor, t: Tensor | None,
              create_graph: bool) -> Tensor:
    """ReLU'd GradCAM `[N, 1, h, w]` of logit `y` at a conv layer (camloss.grad_cam for the last one)."""
    if layer_name is None:
        return grad_cam(net, x, y, t, create_graph)
    with torch.enable_grad():
        return LayerGradCam(net, conv_layer(net, layer_name)).attribute(
            x, target=y, additional_forward_args=(t,), relu_attributions=True,
            grad_kwargs={"create_graph": create_graph},
        )


def label_input_gradient(net: nn.Module, x: Tensor, y: Tensor, t: Tensor | None, create_graph: bool) -> Tensor:
    """d logit_y / dx, `[N, C, H, W]` (RRR's "vanilla backpropagation" saliency)."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        score = net(x, t).gather(1, y.view(-1, 1)).sum()
        (grad,) = torch.autograd.grad(score, x, create_graph=create_graph)
    return grad


def upsample_bilinear(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """`F.interpolate(maps, size, mode="bilinear", align_corners=False)` as two constant matrix
    products (bilinear interpolation is separable): same values, but a deterministic backward, which
    F.interpolate lacks on CUDA (with trainer.deterministic=true its double backprop would stop the run)."""

    def matrix(n_in: int, n_out: int) -> Tensor:  # [n_out, n_in], row i: the weights of output i
        eye = torch.eye(n_in, dtype=maps.dtype, device=maps.device).unsqueeze(0)
        return F.interpolate(eye, size=n_out, mode="linear", align_corners=False)[0].T

    return matrix(maps.shape[-2], size[0]) @ maps @ matrix(maps.shape[-1], size[1]).T


def scaled(maps: Tensor) -> Tensor:
    """Each map divided by its max |value| (+EPS, as camloss.upsampled_cam)."""
    return maps / (maps.flatten(1).abs().amax(1).view(-1, *[1] * (maps.dim() - 1)) + EPS)


def explanation_maps(net: nn.Module, batch: Batch, kind: str, layer_name: str | None = None,
                     create_graph: bool = False) -> Tensor:
    """The maps saliency replay stores and compares, of each sample's label logit, in eval mode:
    `gradcam` `[N, 1, H, W]` (bilinearly upsampled to the input), `input_gradient` `[N, C, H, W]`."""
    t = batch.t if getattr(net, "multihead", False) else None
    with eval_mode(net):
        if kind == "gradcam":
            cam = layer_cam(net, layer_name, batch.x, batch.y, t, create_graph)
            maps = upsample_bilinear(cam, batch.x.shape[-2:])
        else:
            maps = label_input_gradient(net, batch.x, batch.y, t, create_graph)
    return scaled(maps)


# -- the memory -----------------------------------------------------------------------------
class ExplainedBuffer(ReservoirBuffer):
    """A ReservoirBuffer that keeps, beside every sample it takes in, `explain(samples)` computed at
    that moment (the extra "maps").

    Only the samples actually stored are explained (once the buffer is full, a few per batch):
    `add` tags the offered samples with their batch row (extra "row"), reads which slots took a
    tagged sample, explains those rows, and clears the tags. Whatever extras the caller passes
    (DER's logits) are stored as usual, so any rehearsal method's `add` gets maps for free.
    """

    def __init__(self, capacity: int, seed: int = 0, mode: str = "reservoir") -> None:
        super().__init__(capacity, seed, mode)
        self.explain: Callable[[Batch], Tensor] | None = None  # set around each add by the strategy

    @classmethod
    def like(cls, buffer: ReservoirBuffer) -> ExplainedBuffer:
        """Same capacity, mode, generator state and contents as `buffer`."""
        new = cls(buffer.capacity, 0, buffer.mode)
        new.load_state_dict(buffer.state_dict())
        return new

    def add(self, batch: Batch, **extras: Tensor) -> None:
        if self.explain is None:
            raise RuntimeError("ExplainedBuffer.add needs `explain` set (the strategy sets it in on_train_batch_end)")
        n = len(batch)
        if n == 0:
            return
        tags = self.extras.setdefault(ROW, torch.full((self.capacity,), -1.0))
        super().add(batch, **extras, **{ROW: torch.arange(n, dtype=torch.float32)})
        slots = (tags[: self.size] >= 0).nonzero().squeeze(1)
        if len(slots):
            rows = tags[slots].long()
            maps = self.explain(batch.select(rows.to(batch.x.device))).detach().to("cpu", torch.float32)
            if MAPS not in self.extras:
                self.extras[MAPS] = torch.zeros((self.capacity, *maps.shape[1:]))
            self.extras[MAPS][slots] = maps
        tags.fill_(-1.0)

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["extras"].pop(ROW, None)  # bookkeeping of the running add only
        return state


# -- the strategy ---------------------------------------------------------------------------
class SaliencyReplayMixin:
    """RRR's explanation memory and penalty on top of a rehearsal strategy with a `self.buffer`.

    - `weight` (>= 0): weight of the L1 penalty `mean |map_now − map_stored|`.
    - `explanation_map`: `gradcam` (needs a conv layer), `input_gradient`, or `auto` (GradCAM
      when the model has a conv layer, else input gradients).
    - `gradcam_layer`: name of the Conv2d GradCAM reads (e.g. `backbone.0`); null: the last one.
    - `saliency_batch_size`: samples drawn for the penalty per step (null: as many as the current
      batch). They are drawn separately from the base's replay batch (one more draw from the same
      buffer), so the base's loss is untouched whatever it is.
    """

    buffer: ReservoirBuffer

    def __init__(self, *args, weight: float = 1.0, explanation_map: str = "auto", gradcam_layer: str | None = None,
                 saliency_batch_size: int | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(weight, int | float) or not weight >= 0:
            raise ConfigError("strategy.weight", f"must be a number >= 0, got {weight!r}",
                              "the weight of the saliency (explanation) penalty")
        if explanation_map not in EXPLANATION_MAPS:
            raise ConfigError("strategy.explanation_map", f"unknown map {explanation_map!r}",
                              f"choose one of {', '.join(EXPLANATION_MAPS)}")
        if gradcam_layer is not None and (not isinstance(gradcam_layer, str) or explanation_map == "input_gradient"):
            raise ConfigError("strategy.gradcam_layer", f"{gradcam_layer!r} is only used by explanation_map=gradcam",
                              "set it to null, or explanation_map=gradcam")
        if saliency_batch_size is not None and (not isinstance(saliency_batch_size, int) or saliency_batch_size < 1):
            raise ConfigError("strategy.saliency_batch_size", f"must be an integer >= 1 or null, got "
                              f"{saliency_batch_size!r}", "null draws as many samples as the current batch holds")
        self.weight = float(weight)
        self.explanation_map = explanation_map
        self.gradcam_layer = gradcam_layer
        self.saliency_batch_size = saliency_batch_size
        wants_gradcam = explanation_map == "gradcam" or gradcam_layer is not None
        self.needs = tuple(dict.fromkeys([*getattr(super(), "needs", ()), *(("conv",) if wants_gradcam else ())]))
        self.buffer = ExplainedBuffer.like(self.buffer)
        self._kind: str | None = None  # gradcam | input_gradient, resolved against the net

    def setup(self, net: nn.Module) -> None:
        super().setup(net)
        self._resolve(net)

    def _resolve(self, net: nn.Module) -> str:
        if self._kind is None:
            has_conv = net.last_conv() is not None
            kind = self.explanation_map
            if kind == "auto":
                kind = "gradcam" if has_conv or self.gradcam_layer is not None else "input_gradient"
            if kind == "gradcam":
                conv_layer(net, self.gradcam_layer)  # a ConfigError before training if it is missing
            self._kind = kind
        return self._kind

    def maps(self, net: nn.Module, batch: Batch, create_graph: bool = False) -> Tensor:
        """This strategy's explanation maps of `batch` under `net` (stored ones are `create_graph=False`)."""
        return explanation_maps(net, batch, self._resolve(net), self.gradcam_layer, create_graph)

    def saliency_loss(self, net: nn.Module, n: int) -> Tensor:
        """`mean |map_now − map_stored|` over min(n, len) samples drawn from the buffer (0 if empty)."""
        if len(self.buffer) == 0 or MAPS not in self.buffer.extras:
            return torch.zeros((), device=device_of(net))
        replay, extras = self.buffer.draw(n)
        replay = replay.to(device_of(net))
        stored = extras[MAPS].to(replay.x.device)
        return (self.maps(net, replay, create_graph=True) - stored).abs().mean()

    def loss(self, net: nn.Module, batch: Batch, logits: Tensor) -> Tensor:
        total = super().loss(net, batch, logits)
        if self.weight == 0:
            return total
        return total + self.weight * self.saliency_loss(net, self.saliency_batch_size or len(batch))

    def on_train_batch_end(self, net: nn.Module, batch: Batch, logits: Tensor) -> None:
        self.buffer.explain = lambda samples: self.maps(net, samples)
        try:
            super().on_train_batch_end(net, batch, logits)
        finally:
            self.buffer.explain = None


class SaliencyReplay(SaliencyReplayMixin, ER):
    """ER + saliency replay: `replay_weight · CE(replay) + weight · mean |map_now − map_stored|`.

    ER's options (`buffer_size`, `replay_batch_size`, `replay_weight`, `buffer_mode`, `seed`) and
    the mixin's (`weight`, `explanation_map`, `gradcam_layer`, `saliency_batch_size`).
    """


class SaliencyDERpp(SaliencyReplayMixin, DERpp):
    """DER++ + saliency replay: stored logits and stored explanations of the same buffered samples
    (DER++'s options, then the mixin's `weight`, `explanation_map`, `gradcam_layer`,
    `saliency_batch_size`)."""
