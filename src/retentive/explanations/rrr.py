"""RRR, "Right for the Right Reasons" (Ross et al. 2017): input-gradient penalty inside the mask."""

from __future__ import annotations

import torch
from torch import Tensor

from retentive.explanations.base import ExplanationLoss
from retentive.models.continual_net import ContinualNet


def input_gradients(net: ContinualNet, x: Tensor, t: Tensor | None, create_graph: bool) -> Tensor:
    """d/dx of the summed log-probabilities (all classes), kept differentiable for double backprop."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        log_probs = torch.log_softmax(net(x, t), dim=1)
        log_probs = log_probs.masked_fill(~torch.isfinite(log_probs), 0.0)  # absent heads' -inf
        (grad,) = torch.autograd.grad(log_probs.sum(), x, create_graph=create_graph)
    return grad


def rrr_measure(grad: Tensor, mask: Tensor) -> Tensor:
    """Squared input gradient inside the mask, summed over pixels, averaged over the batch."""
    return (mask * grad).pow(2).flatten(1).sum(1).mean()


class RRR(ExplanationLoss):
    """`mean_n sum_d (A_nd * d/dx_nd sum_k log p_k(x_n))^2` with A the dataset mask.

    The paper sums over the batch; we average so `weight` does not depend on the batch size.
    """

    needs_mask = True

    def __call__(self, net: ContinualNet, x: Tensor, y: Tensor, mask: Tensor | None, t: Tensor) -> Tensor:
        assert mask is not None, "RRR needs a mask (the runner checks dataset.has_masks)"
        grad = input_gradients(net, x, t if net.multihead else None, create_graph=True)
        return rrr_measure(grad, mask.to(grad.dtype))
