"""CDEP (Rieger et al. 2020): penalise the contextual-decomposition importance of the masked region."""

from __future__ import annotations

import torch
from torch import Tensor

from retentive.explanations.base import ExplanationLoss
from retentive.explanations.contextual_decomposition import check_decomposable, decompose
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


class CDEP(ExplanationLoss):
    """Mean share of the logits that contextual decomposition attributes to the masked region.

    `pixel_blobs=0`: the whole mask is one group (DecoyMNIST, backgrounds). `pixel_blobs=k`: k
    single pixels drawn from the mask per sample, each its own group (ColorMNIST: colour lives in
    single pixels, shape only in groups of them); the k decompositions run as one batch.
    """

    needs_mask = True

    def __init__(self, weight: float = 1.0, pixel_blobs: int = 0) -> None:
        super().__init__(weight)
        self.pixel_blobs = pixel_blobs

    def check(self, net: ContinualNet) -> None:
        check_decomposable(net)

    def __call__(self, net: ContinualNet, x: Tensor, y: Tensor, mask: Tensor | None, t: Tensor) -> Tensor:
        assert mask is not None, "CDEP needs a mask (the runner checks dataset.has_masks)"
        mask = mask.to(x.dtype)
        if self.pixel_blobs > 0:
            groups = sample_pixels(mask, self.pixel_blobs)
            x = x.repeat(self.pixel_blobs, 1, 1, 1)
            t = t.repeat(self.pixel_blobs)
            mask = groups
        rel, irrel = decompose(net, x * mask, x * (1.0 - mask), t if net.multihead else None)
        return cdep_score(rel, irrel)
