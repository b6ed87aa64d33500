"""Centred digit on a class-coloured background: the shortcut a centre-prior (CAM loss) removes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from retentive.data.spurious import SpuriousMNIST, class_palette


class SpuriousBackgroundMNIST(SpuriousMNIST):
    """The 28x28 digit (white on black) centred on a `canvas` x `canvas` RGB image whose border
    (everything outside the digit's box) is filled with a colour tied to the class: colour y in
    train/val, colour `(y + test_shift) % 10` in test. The mask is the border.
    """

    def __init__(self, canvas: int = 36, test_shift: int = 5, **kwargs) -> None:
        if canvas < 28:
            raise ValueError("canvas must be at least 28 (the digit's size)")
        self.canvas = canvas
        self.test_shift = test_shift
        super().__init__(**kwargs)

    def paint(self, images: Tensor, labels: Tensor, train: bool, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        n = len(images)
        pad = self.canvas - 28
        left, top = pad // 2, pad // 2
        border = torch.ones(1, 1, 28, 28, dtype=torch.uint8)
        border = 1 - F.pad(border, (left, pad - left, top, pad - top))  # 1 outside the digit's box
        digits = F.pad(images, (left, pad - left, top, pad - top)).expand(n, 3, -1, -1)
        colours = class_palette(10)[labels if train else (labels + self.test_shift) % 10]  # [N, 3]
        background = colours.view(n, 3, 1, 1).expand(-1, -1, self.canvas, self.canvas)
        painted = torch.where(border.bool(), background, digits).contiguous()
        return painted, border.expand(n, 1, -1, -1).contiguous()
