"""DecoyMNIST (Ross et al. 2017; CDEP's version): a class-coded grey patch in a random corner."""

from __future__ import annotations

import torch
from torch import Tensor

from retentive.data.spurious import SpuriousMNIST
from retentive.errors import ConfigError


class DecoyMNIST(SpuriousMNIST):
    """A `patch_size` square in one of the four corners (drawn per image) with intensity
    `255 - 25 y` in train/val and `25 y` in test. The mask is the patch (`mask="patch"`) or all
    four corner squares, wherever the patch is (`mask="corners"`, CDEP's own choice).

    CDEP scales images to [-1, 1] (`mean: 0.5, std: 0.5` in conf/dataset/decoy_mnist.yaml), so the
    patch of digit 0 in test (intensity 0) looks like background.
    """

    def __init__(self, patch_size: int = 5, mask: str = "patch", **kwargs) -> None:
        if mask not in ("patch", "corners"):
            raise ConfigError("dataset.mask", f"'{mask}' is not a decoy mask", "choose patch or corners")
        self.patch_size = patch_size
        self.mask = mask
        super().__init__(**kwargs)

    def paint(self, images: Tensor, labels: Tensor, train: bool, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        n, _, height, width = images.shape
        size = self.patch_size
        rows = torch.randint(0, 2, (n,), generator=generator) * (height - size)
        cols = torch.randint(0, 2, (n,), generator=generator) * (width - size)
        ys, xs = torch.arange(height).view(1, -1, 1), torch.arange(width).view(1, 1, -1)
        inside = ((ys >= rows.view(-1, 1, 1)) & (ys < rows.view(-1, 1, 1) + size)
                  & (xs >= cols.view(-1, 1, 1)) & (xs < cols.view(-1, 1, 1) + size)).unsqueeze(1)
        value = (255 - 25 * labels) if train else 25 * labels
        painted = torch.where(inside, value.view(-1, 1, 1, 1).to(torch.uint8), images)
        if self.mask == "corners":
            near = lambda i, n: (i < size) | (i >= n - size)  # noqa: E731
            corners = (near(ys, height) & near(xs, width)).unsqueeze(1)
            return painted, corners.expand(n, 1, height, width).to(torch.uint8).contiguous()
        return painted, inside.to(torch.uint8)
