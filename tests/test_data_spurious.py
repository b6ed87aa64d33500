"""Spurious-feature streams: the feature is tied to the class in train, to another class in test,
and the mask marks exactly where it is."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from retentive.data import ColorMNIST, DecoyMNIST, SpuriousBackgroundMNIST
from retentive.data.sources import load_mnist
from retentive.data.spurious import class_palette

DATA_DIR = os.environ.get("DATA_DIR") or str(Path(__file__).resolve().parents[1] / ".." / "shared" / "data")


@pytest.fixture(scope="module", autouse=True)
def need_mnist() -> None:
    if not (Path(DATA_DIR) / "MNIST" / "raw").is_dir():
        pytest.skip(f"MNIST not found under {DATA_DIR} (set DATA_DIR)")


def first(dataset, n: int = 200):
    return dataset[list(range(min(n, len(dataset))))]


def test_palette_runs_red_to_purple() -> None:
    palette = class_palette(10)
    assert palette.shape == (10, 3) and palette.dtype == torch.uint8
    assert palette[0].tolist() == [255, 0, 0]  # red
    assert palette[9].tolist() == [128, 0, 128]  # purple (#800080)
    assert len({tuple(c) for c in palette.tolist()}) == 10


def test_color_mnist_colour_is_class_in_train_and_nine_minus_class_in_test() -> None:
    stream = ColorMNIST(data_dir=DATA_DIR, train_samples_per_task=300, test_samples_per_task=300)
    palette = class_palette(10).float() / 255
    assert stream.input_shape == (3, 28, 28) and stream.has_masks and stream.num_tasks == 1
    for split, colour_of in ((stream.train(0), lambda y: y), (stream.test(0), lambda y: 9 - y)):
        x, y, _, mask = first(split)
        peak = x.sum(1).flatten(1).argmax(1)
        colour = x.flatten(2)[torch.arange(len(x)), :, peak]
        expected = palette[colour_of(y)]
        # the brightest stroke pixel of MNIST is 255, so it shows the colour itself (rounding: 1/255)
        torch.testing.assert_close(colour, expected, atol=1 / 255 + 1e-6, rtol=0)
        assert mask.shape == (len(x), 1, 28, 28)
        assert torch.all(mask.bool() >= (x.amax(1, keepdim=True) > 0))  # every coloured pixel is masked
    # the mask is exactly the stroke (digit > 0), test split in MNIST order
    raw = load_mnist(DATA_DIR, train=False)
    _, _, _, mask = first(ColorMNIST(data_dir=DATA_DIR).test(0), 50)
    assert torch.equal(mask.bool(), raw.images[:50] > 0)


def test_decoy_mnist_patch_value_position_and_mask() -> None:
    stream = DecoyMNIST(data_dir=DATA_DIR, train_samples_per_task=300, test_samples_per_task=300)
    for split, value_of in ((stream.train(0), lambda y: 255 - 25 * y), (stream.test(0), lambda y: 25 * y)):
        x, y, _, mask = first(split)
        assert torch.all(mask.sum((1, 2, 3)) == 25)
        rows = mask[:, 0].amax(2).float().argmax(1)
        cols = mask[:, 0].amax(1).float().argmax(1)
        assert set(rows.tolist()) <= {0, 23} and set(cols.tolist()) <= {0, 23}
        patch_values = (x * 255).round()[mask.bool()].view(len(x), 25)
        assert torch.all(patch_values == value_of(y).float().view(-1, 1))
    corners = {(r, c) for r, c in zip(rows.tolist(), cols.tolist(), strict=True)}
    assert len(corners) == 4  # all four corners are used
    # outside the patch the digit is untouched
    raw = load_mnist(DATA_DIR, train=False)
    stream_full = DecoyMNIST(data_dir=DATA_DIR, val_fraction=0.0)
    x, _, _, mask = stream_full.test(0)[list(range(50))]
    original = raw.images[:50].float() / 255
    assert torch.equal(x[~mask.bool()], original[~mask.bool()])


def test_spurious_background_border_colour_and_mask() -> None:
    stream = SpuriousBackgroundMNIST(data_dir=DATA_DIR, canvas=36, test_shift=5, train_samples_per_task=200,
                                     test_samples_per_task=200)
    palette = class_palette(10).float() / 255
    assert stream.input_shape == (3, 36, 36)
    for split, colour_of in ((stream.train(0), lambda y: y), (stream.test(0), lambda y: (y + 5) % 10)):
        x, y, _, mask = first(split)
        assert torch.all(mask.sum((1, 2, 3)) == 36 * 36 - 28 * 28)
        assert torch.all(mask[:, :, 4:32, 4:32] == 0)
        torch.testing.assert_close(x[:, :, 0, 0], palette[colour_of(y)])
        torch.testing.assert_close(x[:, :, 35, 17], palette[colour_of(y)])
        centre = x[:, :, 4:32, 4:32]
        assert torch.equal(centre[:, 0], centre[:, 1])  # the digit itself is grey


@pytest.mark.parametrize("cls", [ColorMNIST, DecoyMNIST, SpuriousBackgroundMNIST])
def test_class_groups_make_a_sequence_with_masks(cls) -> None:
    stream = cls(data_dir=DATA_DIR, class_groups=[[0, 1], [2, 3, 4]], scenario="task", train_samples_per_task=100)
    assert stream.num_tasks == 2 and stream.head_sizes == [2, 3] and stream.task_names == ["0/1", "2/3/4"]
    _, y, t, mask = first(stream.train(1))
    assert set(y.tolist()) <= {0, 1, 2} and torch.all(t == 1)
    assert mask.dtype == torch.float32 and mask.shape[1] == 1 and mask.sum() > 0
    assert len(stream.test(1)) == int(sum((load_mnist(DATA_DIR, train=False).labels == c).sum() for c in (2, 3, 4)))
