"""ColorMNIST (CDEP, Rieger et al. 2020): every digit tinted with a colour tied to its class."""

from __future__ import annotations

import torch
from torch import Tensor

from retentive.data.spurious import SpuriousMNIST, class_palette


class ColorMNIST(SpuriousMNIST):
    """Train/val: class y in colour y; test: class y in colour 9 - y, so colour alone gets ~0%.

    Images are `[N, 3, 28, 28]` (the digit's intensity times its RGB colour). The spurious feature
    is the colour, which lives in every stroke pixel but is visible in each pixel on its own, while
    the shape needs several pixels together. The mask therefore marks the stroke pixels (`digit > 0`)
    and CDEP penalises them one pixel at a time (`explanation.pixel_blobs`, as in the paper), which
    penalises colour and leaves shape alone.
    """

    def paint(self, images: Tensor, labels: Tensor, train: bool, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        palette = class_palette(10).float()
        colours = palette[labels if train else 9 - labels]  # [N, 3]
        tinted = images.float() * colours.view(-1, 3, 1, 1) / 255.0
        masks = (images > 0).to(torch.uint8)
        return tinted.round().to(torch.uint8), masks
