"""LeNet-style convolutional backbone (GradCAM and CDEP need spatial feature maps)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def cnn_backbone(
    input_shape: Sequence[int],
    channels: Sequence[int] = (20, 50),
    kernel_size: int = 5,
    hidden: int = 500,
    batch_norm: bool = False,
) -> tuple[nn.Sequential, int]:
    """[Conv -> (BN) -> ReLU -> MaxPool2d(2)] per channel count, then Flatten -> Linear -> ReLU.

    Defaults are CDEP's ColorMNIST net (conv 20/50, fc 500). Convolutions are padded ('same') so
    8x8 digits and 28x28 MNIST both work.
    """
    layers: list[nn.Module] = []
    in_channels = input_shape[0]
    for out_channels in channels:
        layers.append(nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers += [nn.ReLU(), nn.MaxPool2d(2)]
        in_channels = out_channels
    layers.append(nn.Flatten())
    with torch.no_grad():
        flat = nn.Sequential(*layers)(torch.zeros(1, *input_shape)).shape[1]
    layers += [nn.Linear(flat, hidden), nn.ReLU()]
    return nn.Sequential(*layers), hidden
