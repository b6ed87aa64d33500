"""Keeps the per-layer outputs of a backbone's latest training forward, for reuse by CDEP.

Contextual decomposition keeps `rel + irrel` equal to the network's activation at every layer, so
when the activations of the very forward pass the task loss used are at hand, only `rel` needs
pushing through the convolutions (`irrel = activation - rel`): one extra pass instead of two,
which is what brings CDEP to ~2x the cost of plain training. The cache is filled by forward hooks
and handed out only for the same input tensor object, the same backbone, with autograd on.

Max-pooling layers are switched to `return_indices=True` while the cache is installed (their hook
hands the next layer the values alone), so the argmax the decomposition needs comes from the pass
the task loss already ran instead of a second `max_pool2d_with_indices` over the same input (on
CPU that kernel was ~10% of a CDEP step; the training forward computes the indices anyway for its
own backward).
"""

from __future__ import annotations

import weakref

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle


class ActivationCache:
    """Forward hooks on `backbone` and its layers; `take(x)` returns `(outputs per layer)` or None,
    `take_recording(x)` also the max-pool argmax per layer (None for other layers)."""

    def __init__(self, backbone: nn.Sequential) -> None:
        self.backbone_ref = weakref.ref(backbone)
        self.layers = list(backbone)
        self.input: Tensor | None = None
        self.outputs: list[Tensor] = []
        self.indices: list[Tensor | None] = []
        self.switched: list[nn.MaxPool2d] = []  # pools whose return_indices we turned on
        self.handles: list[RemovableHandle] = [backbone.register_forward_pre_hook(self._start)]
        for index, layer in enumerate(self.layers):
            strip = isinstance(layer, nn.MaxPool2d) and not layer.return_indices
            if strip:
                layer.return_indices = True
                self.switched.append(layer)
            self.handles.append(layer.register_forward_hook(_LayerRecorder(self, index, strip)))

    def _start(self, module: nn.Module, args: tuple) -> None:
        if module is not self.backbone_ref():  # a copy of the net sharing this recorder
            return
        self.input, self.outputs, self.indices = None, [], []
        if torch.is_grad_enabled() and args:
            self.input = args[0]

    def record(self, index: int, module: nn.Module, output: Tensor, argmax: Tensor | None) -> None:
        if self.input is not None and module is self.layers[index] and len(self.outputs) == index:
            self.outputs.append(output)
            self.indices.append(argmax)

    def take_recording(self, backbone: nn.Module, x: Tensor) -> tuple[list[Tensor], list[Tensor | None]] | None:
        """Outputs and max-pool indices recorded for exactly `x` through exactly `backbone` (then
        forgotten)."""
        outputs, indices, recorded_input = self.outputs, self.indices, self.input
        self.input, self.outputs, self.indices = None, [], []
        if backbone is not self.backbone_ref() or recorded_input is not x or len(outputs) != len(self.layers):
            return None
        return outputs, indices

    def take(self, backbone: nn.Module, x: Tensor) -> list[Tensor] | None:
        """The outputs recorded for exactly `x` through exactly `backbone` (then forgotten)."""
        recording = self.take_recording(backbone, x)
        return None if recording is None else recording[0]

    def __deepcopy__(self, memo: dict) -> ActivationCache:
        """Copies of the net (teachers, snapshots) share this recorder; its identity checks make it
        ignore them, and recorded tensors are never deep-copied (autograd forbids it)."""
        return self

    def __getstate__(self) -> dict:
        """Pickled nets (torch.save of a whole module) keep an inert recorder."""
        return {"layers": [], "input": None, "outputs": [], "indices": [], "switched": [], "handles": []}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.backbone_ref = lambda: None

    def remove(self) -> None:
        """Hooks off, and the pools we switched back to returning values only."""
        for handle in self.handles:
            handle.remove()
        for layer in self.switched:
            layer.return_indices = False
        self.switched = []


class _LayerRecorder:
    """Forward hook of layer `index` (a class, not a closure, so nets holding it still pickle).

    With `strip` (a max pool we switched to return indices) it returns the values alone, always:
    copies and unpickled nets carry the switched pool and this hook together.
    """

    def __init__(self, cache: ActivationCache, index: int, strip: bool = False) -> None:
        self.cache = cache
        self.index = index
        self.strip = strip

    def __call__(self, module: nn.Module, args: tuple, output: Tensor | tuple[Tensor, Tensor]) -> Tensor | None:
        argmax = None
        if self.strip and isinstance(output, tuple):
            output, argmax = output
        self.cache.record(self.index, module, output, argmax)
        return output if self.strip else None
