"""ContinualNet: a shared backbone with one head per task (Task-IL) or a single head."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
from torch import Tensor, nn

from retentive.errors import ConfigError


class ContinualNet(nn.Module):
    """Backbone + heads. With `multihead`, sample i is scored by head `t[i]` (Task-IL).

    Heads of different sizes are padded with -inf so a mixed batch still gives one logits tensor.
    """

    def __init__(self, backbone: nn.Sequential, feature_dim: int, head_sizes: Sequence[int], multihead: bool) -> None:
        super().__init__()
        if multihead is False and len(head_sizes) != 1:
            raise ValueError("a single-head net needs exactly one head size")
        self.backbone = backbone
        self.heads = nn.ModuleList(nn.Linear(feature_dim, size) for size in head_sizes)
        self.multihead = multihead

    def features(self, x: Tensor) -> Tensor:
        return self.backbone(x)

    def head_logits(self, features: Tensor, t: Tensor | None = None) -> Tensor:
        """Apply the right head to backbone features (also used by contextual decomposition)."""
        return self.apply_heads(lambda head: head(features), t, features.shape[0], features)

    def apply_heads(self, score: Callable[[nn.Linear], Tensor], t: Tensor | None, n: int, like: Tensor) -> Tensor:
        """Route each sample to its head: `score(head)` gives that head's output for the batch."""
        if not self.multihead:
            return score(self.heads[0])
        if t is None:
            raise ValueError("a multi-head (Task-IL) ContinualNet needs task ids t")
        width = max(head.out_features for head in self.heads)
        out = like.new_full((n, width), float("-inf"))
        for task in torch.unique(t).tolist():
            rows = (t == task).nonzero().squeeze(1)
            scored = score(self.heads[task])
            out[rows, : scored.shape[1]] = scored[rows]
        return out

    def forward(self, x: Tensor, t: Tensor | None = None) -> Tensor:
        return self.head_logits(self.features(x), t)

    def backbone_parameters(self) -> Iterator[nn.Parameter]:
        return self.backbone.parameters()

    def head_parameters(self) -> Iterator[nn.Parameter]:
        return self.heads.parameters()

    def last_conv(self) -> nn.Conv2d | None:
        convs = [m for m in self.backbone.modules() if isinstance(m, nn.Conv2d)]
        return convs[-1] if convs else None


INITS = ("default", "xavier")


def build_net(
    backbone: Callable[..., tuple[nn.Sequential, int]],
    input_shape: Sequence[int],
    head_sizes: Sequence[int],
    multihead: bool,
    init: str = "default",
) -> ContinualNet:
    """Hydra builds `backbone` as a partial (`_partial_: true`); the stream supplies the shapes.

    `init="xavier"` re-draws every Linear layer's weights Xavier-uniform with zero biases (mammoth's
    `xavier` for its MLPs, which several published rows depend on); "default" keeps PyTorch's."""
    if init not in INITS:
        raise ConfigError("model.init", f"unknown initialisation {init!r}", f"use one of {', '.join(INITS)}")
    body, feature_dim = backbone(input_shape=input_shape)
    net = ContinualNet(body, feature_dim, head_sizes, multihead)
    if init == "xavier":
        for module in net.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
    return net
