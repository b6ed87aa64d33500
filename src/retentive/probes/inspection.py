"""Model inspection: a conv layer's kernels, and images that maximise a filter or a class
(gradient ascent from noise, with jitter and blur as regularisers; Olah et al. 2017, "Feature
Visualization"). Images are optimised in pixel space [0, 1] and normalised for the model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torchvision.transforms.functional import gaussian_blur

from retentive.errors import require
from retentive.probes.baselines import Stat, on_device


def kernels(layer: nn.Conv2d, max_filters: int) -> Tensor:
    """`[F, k, k]`: the first `max_filters` filters, summed over input channels (a one-channel
    first layer: the weights themselves; deeper layers: the response to a channel-uniform input)."""
    return layer.weight.detach()[:max_filters].sum(dim=1).cpu()


@dataclass
class AscentOptions:
    """Gradient ascent knobs (conf/probes/inspection.yaml documents each)."""

    steps: int = 96
    lr: float = 0.05
    jitter: int = 2
    blur_sigma: float = 0.5
    blur_every: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        for key in ("steps", "blur_every"):
            value = getattr(self, key)
            require(isinstance(value, int) and value >= 1, f"probes.inspection.{key}", f"{value!r} must be an integer >= 1")
        require(isinstance(self.jitter, int) and self.jitter >= 0, "probes.inspection.jitter",
                f"{self.jitter!r} must be an integer >= 0")
        require(self.lr > 0, "probes.inspection.lr", f"{self.lr!r} must be > 0")
        require(self.blur_sigma >= 0, "probes.inspection.blur_sigma", f"{self.blur_sigma!r} must be >= 0")


def ascend(objective: Callable[[Tensor], Tensor], shape: tuple[int, ...], mean: Stat, std: Stat,
           options: AscentOptions, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor, Tensor]:
    """Maximise `objective(x) -> [N]` (x in model space, `shape` = `[N, C, H, W]`) over pixel images
    from seeded grey noise: Adam on the pixels, a random shift of up to `jitter` pixels every step
    (the image must work wherever it lands), a Gaussian blur every `blur_every` steps (removes the
    high-frequency patterns gradients alone produce). Returns (pixels, objective at the start, at
    the end); gradients reach only the pixels, never the model's parameters."""
    generator = torch.Generator().manual_seed(options.seed)
    pixels = (0.5 + 0.1 * torch.randn(shape, generator=generator)).clamp(0, 1).to(device).requires_grad_(True)
    optimizer = torch.optim.Adam([pixels], lr=options.lr)
    mean, std = on_device(mean, pixels), on_device(std, pixels)
    size = min(2 * int(round(3 * options.blur_sigma)) + 1, 2 * min(shape[-2:]) - 1)
    with torch.no_grad():
        start = objective((pixels - mean) / std).detach()
    with torch.enable_grad():
        for step in range(options.steps):
            dy, dx = (torch.randint(-options.jitter, options.jitter + 1, (2,), generator=generator).tolist()
                      if options.jitter else (0, 0))
            shifted = torch.roll(pixels, shifts=(dy, dx), dims=(2, 3))
            score = objective((shifted - mean) / std)
            (grad,) = torch.autograd.grad(-score.sum(), pixels)
            optimizer.zero_grad()
            pixels.grad = grad
            optimizer.step()
            with torch.no_grad():
                if options.blur_sigma > 0 and size > 1 and (step + 1) % options.blur_every == 0:
                    pixels.copy_(gaussian_blur(pixels, [size, size], [options.blur_sigma, options.blur_sigma]))
                pixels.clamp_(0, 1)
    with torch.no_grad():
        end = objective((pixels - mean) / std).detach()
    return pixels.detach().cpu(), start.cpu(), end.cpu()


class _Captured(Exception):
    """Stops the forward pass once the inspected layer has run (nothing after it is needed)."""


def filter_objective(net: nn.Module, layer: nn.Conv2d, filters: int) -> Callable[[Tensor], Tensor]:
    """Image i's score: filter i's activation (before any ReLU) at the centre of its map. A mean over
    the map would be maximised by a uniform black or white image in the first layer (a linear
    function of the pixels); the centre unit shows the pattern in its receptive field instead."""
    captured: dict[str, Tensor] = {}

    def hook(_module: nn.Module, _inputs: tuple, out: Tensor) -> None:
        captured["out"] = out
        raise _Captured

    def objective(x: Tensor) -> Tensor:
        handle = layer.register_forward_hook(hook)
        try:
            net.features(x)  # the backbone only, stopped after `layer`
        except _Captured:
            pass
        finally:
            handle.remove()
        out = captured["out"][:, :filters]
        rows = torch.arange(len(out), device=out.device)
        return out[rows, rows, out.shape[2] // 2, out.shape[3] // 2]

    return objective


def class_objective(net: nn.Module, classes: Tensor, t: Tensor) -> Callable[[Tensor], Tensor]:
    """Image i's score: logit `classes[i]` of head `t[i]`."""

    def objective(x: Tensor) -> Tensor:
        return net(x, t).gather(1, classes.view(-1, 1)).squeeze(1)

    return objective


def class_targets(head_sizes: list[int], multihead: bool) -> tuple[Tensor, Tensor]:
    """(class, head) for every output of every head: Class-/Domain-IL one head, Task-IL one per task."""
    heads = range(len(head_sizes)) if multihead else [0]
    pairs = [(c, h) for h in heads for c in range(head_sizes[h])]
    return torch.tensor([c for c, _ in pairs]), torch.tensor([h for _, h in pairs])
