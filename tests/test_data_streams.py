"""Task streams on real data: label spaces per scenario, held-out validation, transforms."""

from __future__ import annotations

import pytest
import torch

from retentive.data import PermutedMNIST, RotatedMNIST, SplitDigits, SplitMNIST
from retentive.data.sources import load_mnist
from retentive.errors import ConfigError
from tests.conftest import needs_mnist


@needs_mnist
@pytest.mark.parametrize("scenario, head_sizes", [("task", [2] * 5), ("domain", [2]), ("class", [10])])
def test_split_mnist_label_spaces(scenario, head_sizes):
    stream = SplitMNIST(scenario=scenario, train_samples_per_task=300, test_samples_per_task=100)
    assert stream.num_tasks == 5 and stream.input_shape == (1, 28, 28)
    assert stream.head_sizes == head_sizes and stream.multihead == (scenario == "task")
    raw_test = load_mnist(train=False)
    for task in range(5):
        x, y, t = stream.test(task).__getitems__(list(range(len(stream.test(task)))))
        assert set(t.tolist()) == {task}
        expected = {2 * task, 2 * task + 1} if scenario == "class" else {0, 1}
        assert set(y.tolist()) == expected
        assert x.dtype == torch.float32 and x.min() >= 0.0 and x.max() <= 1.0
    # the test split is MNIST's test set: task 0 holds exactly the 0s and 1s of it
    full = SplitMNIST(scenario=scenario)
    assert len(full.test(0)) == int(((raw_test.labels == 0) | (raw_test.labels == 1)).sum())


@needs_mnist
def test_validation_is_held_out_of_train():
    stream = SplitMNIST(scenario="class", val_fraction=0.1)
    train, val = stream.train(0), stream.val(0)
    raw = load_mnist(train=True)
    assert len(train) + len(val) == int(((raw.labels == 0) | (raw.labels == 1)).sum())
    train_keys = {bytes(img.numpy()) for img in train.images}
    overlap = sum(bytes(img.numpy()) in train_keys for img in val.images)
    assert overlap <= 2  # MNIST has a handful of exact duplicate images, never the same sample twice


@needs_mnist
def test_permuted_mnist_permutes_pixels_consistently():
    stream = PermutedMNIST(num_tasks=3, scenario="domain", test_samples_per_task=50, first_task_identity=True)
    raw = load_mnist(train=False).images.flatten(1)
    base = stream.test(0).images.flatten(1)
    perm_task = stream.test(1).images.flatten(1)
    raw_keys = {bytes(row.numpy()) for row in raw}
    assert all(bytes(row.numpy()) in raw_keys for row in base)  # task 0: untouched MNIST test images
    # task 1 sees other test images, each through the same fixed reordering of pixels
    perm = stream.permutation(1, 784)
    inverse = torch.argsort(perm)
    assert all(bytes(row[inverse].numpy()) in raw_keys for row in perm_task)
    assert not all(bytes(row.numpy()) in raw_keys for row in perm_task)
    assert not torch.equal(stream.permutation(1, 784), stream.permutation(2, 784))
    assert stream.head_sizes == [10]
    assert PermutedMNIST(num_tasks=3, scenario="class", test_samples_per_task=10).head_sizes == [30]


@needs_mnist
def test_rotated_mnist_angles():
    stream = RotatedMNIST(num_tasks=4, max_angle=180, scenario="domain", test_samples_per_task=20)
    assert stream.task_names == ["rot0", "rot45", "rot90", "rot135"]
    rotated = RotatedMNIST(angles=[0, 90], scenario="domain")
    a, b = rotated.test(0).images, rotated.test(1).images
    assert torch.equal(torch.rot90(a, 1, dims=(2, 3)), b)  # 90 degrees counter-clockwise


def test_split_digits_offline_dataset():
    stream = SplitDigits(scenario="class")
    assert stream.input_shape == (1, 8, 8) and stream.num_tasks == 5
    total = sum(len(stream.train(t)) + len(stream.val(t)) + len(stream.test(t)) for t in range(5))
    assert total == 1797  # every sample of sklearn's digits, in exactly one split


def test_bad_scenario_and_groups_fail_clearly():
    with pytest.raises(ConfigError, match=r"dataset.scenario: 'tasks' .*task, domain, class"):
        SplitDigits(scenario="tasks")
    with pytest.raises(ConfigError, match="dataset.class_groups"):
        SplitDigits(class_groups=[[0, 1], [1, 2]])


def test_missing_mnist_names_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("RETENTIVE_OFFLINE", "1")
    with pytest.raises(ConfigError, match="DATA_DIR") as error:
        SplitMNIST(data_dir=str(tmp_path / "nowhere"))
    assert "\n" not in str(error.value)
