"""LeNet-style convolutional backbone (GradCAM and CDEP need spatial feature maps)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from retentive.errors import ConfigError


def cnn_backbone(
    input_shape: Sequence[int],
    channels: Sequence[int] = (20, 50),
    kernel_size: int = 5,
    hidden: int = 500,
    batch_norm: bool = False,
    padding: int | None = None,
    pool_before_relu: bool = False,
) -> tuple[nn.Sequential, int]:
    """[Conv -> (BN) -> ReLU -> MaxPool2d(2)] per channel count, then Flatten -> Linear -> ReLU.

    `pool_before_relu` puts the max-pool before the ReLU: the same forward (they commute), but
    contextual decomposition follows the layers in order, and the CDEP authors' `cd.py` pools the
    pre-activation first. The two orders give the same CDEP value and different gradients
    (wherever a pooling window is all <= 0), so their protocol needs theirs.

    Defaults are CDEP's ColorMNIST net (conv 20/50, fc 500) with 'same'-padded convolutions
    (`padding=None`: kernel_size // 2), so 8x8 digits and 28x28 MNIST both work. `padding=0` is the
    CDEP authors' own net (unpadded convs: 28 -> 24 -> 12 -> 8 -> 4, an 800-wide flatten; see
    conf/model/cnn_cdep.yaml).
    """
    if padding is not None and padding < 0:
        raise ConfigError("model.backbone.padding", f"{padding} must be >= 0 or null",
                          "use null ('same') or 0 (CDEP's unpadded convs)")
    pad = kernel_size // 2 if padding is None else padding
    layers: list[nn.Module] = []
    in_channels = input_shape[0]
    for out_channels in channels:
        layers.append(nn.Conv2d(in_channels, out_channels, kernel_size, padding=pad))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers += [nn.MaxPool2d(2), nn.ReLU()] if pool_before_relu else [nn.ReLU(), nn.MaxPool2d(2)]
        in_channels = out_channels
    layers.append(nn.Flatten())
    with torch.no_grad():
        try:
            flat = nn.Sequential(*layers)(torch.zeros(1, *input_shape)).shape[1]
        except RuntimeError as error:  # e.g. unpadded convs on 8x8 digits shrink the map to nothing
            raise ConfigError("model.backbone", f"input {tuple(input_shape)} is too small for these layers "
                              f"({error})", "use padding: null or a larger input") from None
    layers += [nn.Linear(flat, hidden), nn.ReLU()]
    return nn.Sequential(*layers), hidden
