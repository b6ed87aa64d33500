"""Keeps the per-layer outputs of a backbone's latest training forward, for reuse by CDEP.

Contextual decomposition keeps `rel + irrel` equal to the network's activation at every layer, so
when the activations of the very forward pass the task loss used are at hand, only `rel` needs
pushing through the convolutions (`irrel = activation - rel`): one extra pass instead of two,
which is what brings CDEP to ~2x the cost of plain training. The cache is filled by forward hooks
and handed out only for the same input tensor object, the same backbone, with autograd on.
"""

from __future__ import annotations

import weakref

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle


class ActivationCache:
    """Forward hooks on `backbone` and its layers; `take(x)` returns `(outputs per layer)` or None."""

    def __init__(self, backbone: nn.Sequential) -> None:
        self.backbone_ref = weakref.ref(backbone)
        self.layers = list(backbone)
        self.input: Tensor | None = None
        self.outputs: list[Tensor] = []
        self.handles: list[RemovableHandle] = [backbone.register_forward_pre_hook(self._start)]
        for index, layer in enumerate(self.layers):
            self.handles.append(layer.register_forward_hook(self._recorder(index)))

    def _start(self, module: nn.Module, args: tuple) -> None:
        self.input, self.outputs = None, []
        if module is self.backbone_ref() and torch.is_grad_enabled() and args:
            self.input = args[0]

    def _recorder(self, index: int):
        def record(module: nn.Module, args: tuple, output: Tensor) -> None:
            if self.input is not None and module is self.layers[index] and len(self.outputs) == index:
                self.outputs.append(output)
        return record

    def take(self, backbone: nn.Module, x: Tensor) -> list[Tensor] | None:
        """The outputs recorded for exactly `x` through exactly `backbone` (then forgotten)."""
        outputs, recorded_input = self.outputs, self.input
        self.input, self.outputs = None, []
        if backbone is not self.backbone_ref() or recorded_input is not x or len(outputs) != len(self.layers):
            return None
        return outputs

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
