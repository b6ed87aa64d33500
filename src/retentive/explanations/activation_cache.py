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
            self.handles.append(layer.register_forward_hook(_LayerRecorder(self, index)))

    def _start(self, module: nn.Module, args: tuple) -> None:
        if module is not self.backbone_ref():  # a copy of the net sharing this recorder
            return
        self.input, self.outputs = None, []
        if torch.is_grad_enabled() and args:
            self.input = args[0]

    def record(self, index: int, module: nn.Module, output: Tensor) -> None:
        if self.input is not None and module is self.layers[index] and len(self.outputs) == index:
            self.outputs.append(output)

    def take(self, backbone: nn.Module, x: Tensor) -> list[Tensor] | None:
        """The outputs recorded for exactly `x` through exactly `backbone` (then forgotten)."""
        outputs, recorded_input = self.outputs, self.input
        self.input, self.outputs = None, []
        if backbone is not self.backbone_ref() or recorded_input is not x or len(outputs) != len(self.layers):
            return None
        return outputs

    def __deepcopy__(self, memo: dict) -> ActivationCache:
        """Copies of the net (teachers, snapshots) share this recorder; its identity checks make it
        ignore them, and recorded tensors are never deep-copied (autograd forbids it)."""
        return self

    def __getstate__(self) -> dict:
        """Pickled nets (torch.save of a whole module) keep an inert recorder."""
        return {"layers": [], "input": None, "outputs": [], "handles": []}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.backbone_ref = lambda: None

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


class _LayerRecorder:
    """Forward hook of layer `index` (a class, not a closure, so nets holding it still pickle)."""

    def __init__(self, cache: ActivationCache, index: int) -> None:
        self.cache = cache
        self.index = index

    def __call__(self, module: nn.Module, args: tuple, output: Tensor) -> None:
        self.cache.record(self.index, module, output)
