"""Attribution baselines defined in pixel space, returned in the model's (normalised) input space.

A TaskDataset feeds the model `x = (pixel - mean) / std` with `pixel` in [0, 1]. A zero tensor in
model space is therefore the dataset's mean grey (mid-grey on DecoyMNIST/ColorMNIST), not black:
a baseline that promises "black" must be `(0 - mean) / std`. `mean`/`std` are numbers, or [C, 1, 1]
tensors for per-channel standardisation (ColorMNIST's `standardize=true`).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.transforms.functional import gaussian_blur

from retentive.errors import ConfigError

BASELINES = ("black", "blur", "mean")
Stat = float | Tensor  # a dataset's normalisation: one number, or one per channel ([C, 1, 1])


def normalisation_of(dataset) -> tuple[Stat, Stat]:
    """(mean, std) of a TaskDataset's normaliser: floats when scalar, [C, 1, 1] tensors per channel."""
    def one(value) -> Stat:
        value = torch.as_tensor(value, dtype=torch.float32)
        return float(value) if value.numel() == 1 else value.reshape(-1, 1, 1)
    return one(dataset.mean), one(dataset.std)


def on_device(value: Stat, x: Tensor) -> Stat:
    """`value` where `x` lives (per-channel tensors), numbers as they are."""
    return value.to(x.device, x.dtype) if isinstance(value, Tensor) else value


def check_baseline(kind: str, key: str, allow_none: bool = False) -> None:
    choices = (*BASELINES, "none") if allow_none else BASELINES
    if kind not in choices:
        raise ConfigError(key, f"'{kind}' is not a baseline", f"choose one of {', '.join(choices)}")


def to_pixels(x: Tensor, mean: Stat, std: Stat) -> Tensor:
    """Model-space input back to pixel intensities in [0, 1]."""
    return x * on_device(std, x) + on_device(mean, x)


def pixel_baseline(kind: str, x: Tensor, mean: Stat = 0.0, std: Stat = 1.0, blur_sigma: float = 3.0) -> Tensor:
    """The baseline for inputs `x` (model space), in model space.

    - `black`: every pixel 0 (an image with no ink);
    - `blur`: `x` blurred with a Gaussian of `blur_sigma` pixels (keeps the colours and the coarse
      layout, removes the edges; Sturmfels et al. 2020);
    - `mean`: every pixel at the dataset's mean intensity `mean` (what the normaliser maps to 0).
    """
    mean, std = on_device(mean, x), on_device(std, x)
    if kind == "black":
        return torch.zeros_like(x) + (0.0 - mean) / std
    if kind == "mean":
        return torch.zeros_like(x)
    if kind == "blur":
        # ±3 sigma, but reflect padding must stay inside the image (8x8 digits)
        size = min(2 * int(round(3 * blur_sigma)) + 1, 2 * min(x.shape[-2:]) - 1)
        # blur in pixel space; blurring is linear and keeps constants, so it commutes with (p - mean) / std
        pixels = gaussian_blur(to_pixels(x, mean, std), [size, size], [blur_sigma, blur_sigma])
        return (pixels - mean) / std
    raise ConfigError("probes.baseline", f"'{kind}' is not a baseline", f"choose one of {', '.join(BASELINES)}")
