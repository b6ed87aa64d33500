"""CDEP (Rieger et al. 2020): penalise the contextual-decomposition importance of the masked region."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from retentive.errors import ConfigError
from retentive.explanations.activation_cache import ActivationCache
from retentive.explanations.base import ExplanationLoss
from retentive.explanations.contextual_decomposition import (
    check_decomposable,
    decompose,
    decompose_features_given,
    decompose_heads,
    forward_matches_decomposition,
)
from retentive.models.continual_net import ContinualNet


def cdep_score(rel: Tensor, irrel: Tensor) -> Tensor:
    """The paper's loss: softmax over (rel, irrel) per sample and class, the rel share averaged.

    Classes a multi-head net pads with -inf (not in the sample's task) are left out of the mean.
    """
    valid = torch.isfinite(rel) & torch.isfinite(irrel)
    pair = torch.stack([rel, irrel], dim=-1).masked_fill(~valid.unsqueeze(-1), 0.0)
    share = torch.softmax(pair, dim=-1)[..., 0]
    return (share * valid).sum() / valid.sum().clamp_min(1)


def sample_pixels(mask: Tensor, count: int, generator: torch.Generator | None = None) -> Tensor:
    """`count` one-pixel masks per sample, drawn uniformly from the pixels its mask marks.

    Returns `[count * N, 1, H, W]` (block k holds the k-th draw of every sample). A sample whose
    mask is empty gets an empty blob. CDEP's ColorMNIST protocol: a single pixel carries colour
    but no shape, so penalising single pixels' importance penalises colour.
    """
    spatial = mask.amax(dim=1).flatten(1)  # [N, H*W], any channel marked
    weights = spatial + (spatial.sum(1, keepdim=True) == 0).float()  # empty mask: draw anything
    picks = torch.multinomial(weights, count, replacement=True, generator=generator)  # [N, count]
    blobs = torch.zeros(count, *spatial.shape, device=mask.device)
    blobs.scatter_(2, picks.T.unsqueeze(2), 1.0)
    blobs = blobs * spatial.unsqueeze(0)  # empty masks stay empty
    return blobs.view(count * mask.shape[0], 1, *mask.shape[2:])


def sample_batch_pixels(mask: Tensor, count: int, generator: torch.Generator | None = None) -> Tensor:
    """`count` one-pixel masks, each shared by the whole batch: the CDEP authors' ColorMNIST draw.

    Returns `[count * N, 1, H, W]` like `sample_pixels`. A pixel is drawn with probability
    proportional to how many of the batch's masks mark it (theirs: how often the pixel is non-zero
    in the train set; a batch's share is an unbiased estimate of it), with replacement, and the blob
    covers that pixel in every sample, stroke or background, as their `blob * x` does.
    """
    spatial = mask.amax(dim=1).flatten(1)  # [N, H*W]
    frequency = spatial.mean(0)
    if frequency.sum() == 0:  # no marked pixel in the batch: any pixel
        frequency = torch.ones_like(frequency)
    picks = torch.multinomial(frequency, count, replacement=True, generator=generator)  # [count]
    blobs = F.one_hot(picks, spatial.shape[1]).to(mask.dtype)  # [count, H*W]
    return blobs.repeat_interleave(mask.shape[0], dim=0).view(count * mask.shape[0], 1, *mask.shape[2:])


class CDEP(ExplanationLoss):
    """Mean share of the logits that contextual decomposition attributes to the masked region.

    `pixel_blobs=0`: the whole mask is one group (DecoyMNIST, backgrounds). `pixel_blobs=k`: k
    single pixels drawn from the mask per sample, each its own group (ColorMNIST: colour lives in
    single pixels, shape only in groups of them); the k decompositions run as one batch.
    `pixel_draw="per_sample"` draws each sample's pixels from its own mask; `"per_batch"` draws k
    pixels for the whole batch, by how often the batch's masks mark them (the authors' ColorMNIST).
    `reduction="mean"` averages over blobs, samples and classes; `"sum_blobs"` averages within a
    blob and sums over the k blobs, as the authors' ColorMNIST script does (k times the mean).

    With `reuse_forward` (default), the activations of the forward pass the task loss just ran on
    the same `x` are recorded by hooks (`ActivationCache`) and only `rel` is propagated: the same
    numbers and gradients for about half the cost. It falls back to the full two-part propagation
    when there is no such pass (first step, direct calls) or the net's forward differs from the
    decomposed one (BatchNorm, active Dropout).
    """

    needs_mask = True

    def __init__(self, weight: float = 1.0, pixel_blobs: int = 0, reuse_forward: bool = True,
                 reduction: str = "mean", pixel_draw: str = "per_sample") -> None:
        super().__init__(weight)
        if reduction not in ("mean", "sum_blobs"):
            raise ConfigError("explanation.reduction", f"'{reduction}' is not a reduction", "choose mean or sum_blobs")
        if pixel_draw not in PIXEL_DRAWS:
            raise ConfigError("explanation.pixel_draw", f"'{pixel_draw}' is not a pixel draw",
                              "choose per_sample or per_batch")
        self.pixel_blobs = pixel_blobs
        self.pixel_draw = pixel_draw
        self.reduction = reduction
        self.reuse_forward = reuse_forward
        self.cache: ActivationCache | None = None

    def check(self, net: ContinualNet) -> None:
        check_decomposable(net)

    def __call__(self, net: ContinualNet, x: Tensor, y: Tensor, mask: Tensor | None, t: Tensor) -> Tensor:
        assert mask is not None, "CDEP needs a mask (the runner checks dataset.has_masks)"
        recording = self._recording(net, x)
        mask = mask.to(x.dtype)
        repeats = max(self.pixel_blobs, 1)
        if self.pixel_blobs > 0:
            mask = PIXEL_DRAWS[self.pixel_draw](mask, self.pixel_blobs)
            x = x.repeat(repeats, 1, 1, 1)
            t = t.repeat(repeats)
        heads_t = t if net.multihead else None
        if recording is None:
            rel, irrel = decompose(net, x * mask, x * (1.0 - mask), heads_t)
        else:
            outputs, argmaxes = ([_repeat(o, repeats) for o in part] for part in recording)
            features = decompose_features_given(net.backbone, x * mask, x, outputs, argmaxes)
            rel, irrel = decompose_heads(net, *features, heads_t)
        if self.reduction == "sum_blobs":  # the authors' ColorMNIST: one mean score per blob, summed over blobs
            return sum(cdep_score(r, i) for r, i in zip(rel.chunk(repeats), irrel.chunk(repeats), strict=True))
        return cdep_score(rel, irrel)

    def _recording(self, net: ContinualNet, x: Tensor) -> tuple[list[Tensor], list[Tensor | None]] | None:
        """The backbone's layer outputs (and max-pool indices) from the net's last forward on this
        very `x`, if usable."""
        if not self.reuse_forward:
            return None
        if self.cache is None or self.cache.backbone_ref() is not net.backbone:
            if self.cache is not None:
                self.cache.remove()
            self.cache = ActivationCache(net.backbone)
            return None
        recording = self.cache.take_recording(net.backbone, x)
        return recording if recording is not None and forward_matches_decomposition(net.backbone) else None


PIXEL_DRAWS = {"per_sample": sample_pixels, "per_batch": sample_batch_pixels}


def _repeat(tensor: Tensor | None, repeats: int) -> Tensor | None:
    """A recorded tensor for `repeats` stacked copies of the batch (pixel blobs)."""
    if tensor is None or repeats == 1:
        return tensor
    return tensor.repeat(repeats, *[1] * (tensor.ndim - 1))
