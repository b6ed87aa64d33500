"""Beyond MNIST: Fashion-MNIST streams on the real files, Split CIFAR streams on the synthetic stand-in
(and on CIFAR-format files read by torchvision's own CIFAR reader), and the offline failures."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from retentive.config import CONF_DIR, compose_config
from retentive.data import (
    PermutedFashionMNIST,
    PermutedMNIST,
    RotatedFashionMNIST,
    SplitCIFAR10,
    SplitCIFAR100,
    SplitFashionMNIST,
    SplitSyntheticStandIn,
)
from retentive.data.cifar import CIFAR10_MEAN, CIFAR10_STD
from retentive.data.sources import load_mnist, load_torchvision
from retentive.data.synthetic import synthetic_standin
from retentive.errors import ConfigError
from retentive.validation import build


def fashion_available() -> bool:
    raw = Path(os.environ.get("DATA_DIR", "data")) / "FashionMNIST" / "raw"
    return (raw / "train-images-idx3-ubyte").exists() or (raw / "train-images-idx3-ubyte.gz").exists()


needs_fashion = pytest.mark.skipif(not fashion_available(), reason="real Fashion-MNIST not found: export DATA_DIR")
FMNIST = OmegaConf.load(CONF_DIR / "dataset" / "split_fmnist.yaml")


# -- Fashion-MNIST -------------------------------------------------------------------------
@needs_fashion
def test_fashion_source_is_fashion_mnist_and_its_constants_are_its_statistics():
    train, test = load_torchvision("fashion_mnist", train=True), load_torchvision("fashion_mnist", train=False)
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert train.images.dtype == torch.uint8
    assert train.labels.bincount().tolist() == [6000] * 10 and test.labels.bincount().tolist() == [1000] * 10
    assert not torch.equal(train.images[:100], load_mnist(train=True).images[:100])  # not the MNIST files
    pixels = train.images.double() / 255.0
    assert abs(pixels.mean().item() - FMNIST.mean) < 5e-4 and abs(pixels.std().item() - FMNIST.std) < 5e-4


@needs_fashion
@pytest.mark.parametrize("scenario, head_sizes", [("task", [2] * 5), ("domain", [2]), ("class", [10])])
def test_split_fmnist_tasks_labels_and_normalisation(scenario, head_sizes):
    stream = instantiate(FMNIST, scenario=scenario, data_dir=None, seed=0, train_samples_per_task=300,
                         test_samples_per_task=100)
    assert isinstance(stream, SplitFashionMNIST) and stream.num_tasks == 5 and stream.input_shape == (1, 28, 28)
    assert stream.head_sizes == head_sizes and stream.task_names == ["0/1", "2/3", "4/5", "6/7", "8/9"]
    raw_test = load_torchvision("fashion_mnist", train=False)
    for task in range(5):
        dataset = stream.test(task)
        batch = dataset.batch()
        assert set(batch.t.tolist()) == {task} and len(dataset) == 100 and len(stream.train(task)) == 300
        assert set(batch.y.tolist()) == ({2 * task, 2 * task + 1} if scenario == "class" else {0, 1})
        expected = (dataset.images.float() / 255.0 - 0.2860) / 0.3530
        assert torch.allclose(batch.x, expected)
        keys = {bytes(img.numpy()) for img in raw_test.images[(raw_test.labels // 2) == task]}
        assert all(bytes(img.numpy()) in keys for img in dataset.images)  # images of this task's classes only
    full = SplitFashionMNIST(scenario=scenario)
    assert [len(full.test(t)) for t in range(5)] == [2000] * 5
    assert [len(full.train(t)) + len(full.val(t)) for t in range(5)] == [12000] * 5


@needs_fashion
def test_permuted_and_rotated_fashion_mnist():
    permuted = PermutedFashionMNIST(num_tasks=2, scenario="domain", pad=2, test_samples_per_task=20)
    # PermutedMNIST's permutations (seed * 10007 + task), so Permuted MNIST and Fashion-MNIST share their tasks
    assert torch.equal(permuted.permutation(1, 1024), torch.randperm(1024, generator=torch.Generator().manual_seed(1)))
    assert isinstance(permuted, PermutedMNIST) and permuted.source == "fashion_mnist"
    raw = torch.nn.functional.pad(load_torchvision("fashion_mnist", train=False).images, (2,) * 4).flatten(1)
    raw_keys = {bytes(row.numpy()) for row in raw}
    inverse = torch.argsort(permuted.permutation(1, 1024))
    task1 = permuted.test(1).images.flatten(1)
    assert permuted.input_shape == (1, 32, 32) and permuted.head_sizes == [10]
    assert all(bytes(row[inverse].numpy()) in raw_keys for row in task1)
    assert not any(bytes(row.numpy()) in raw_keys for row in task1)
    rotated = RotatedFashionMNIST(angles=[0, 90], scenario="class", train_samples_per_task=10)
    assert torch.equal(rotated.test(1).images, torch.rot90(rotated.test(0).images, 1, dims=(2, 3)))
    assert rotated.head_sizes == [20] and rotated.task_names == ["rot0", "rot90"]


@needs_fashion
def test_split_fmnist_experiment_learns(run_config):
    summary, _ = run_config("experiment=split_fmnist", "dataset.scenario=task", "strategy=naive",
                            "schedule.steps_per_task=40", "dataset.train_samples_per_task=600",
                            "dataset.test_samples_per_task=300")
    assert summary["name"] == "splitfmnist-task-naive" and summary["dataset"] == "SplitFashionMNIST"
    assert summary["ACC"] > 0.75  # Task-IL chance: 0.5


def test_missing_fashion_mnist_offline_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("RETENTIVE_OFFLINE", "1")
    with pytest.raises(ConfigError) as error:
        SplitFashionMNIST(data_dir=str(tmp_path))
    message = str(error.value)
    assert "\n" not in message and "Fashion-MNIST not found" in message
    assert str(tmp_path / "FashionMNIST" / "raw") in message and "set DATA_DIR" in message


# -- Split CIFAR on the synthetic stand-in ----------------------------------------------------
def test_standin_is_cifar_shaped_deterministic_and_named_stand_in():
    train = synthetic_standin(10, 20, 0, True)
    assert train.images.shape == (200, 3, 32, 32) and train.images.dtype == torch.uint8
    assert train.labels.bincount().tolist() == [20] * 10
    assert torch.equal(train.images, synthetic_standin(10, 20, 0, True).images)
    assert not torch.equal(train.images, synthetic_standin(10, 20, 1, True).images)
    assert not torch.equal(train.images[:20], synthetic_standin(10, 20, 0, False).images[:20])
    stream = SplitSyntheticStandIn(like="cifar10", train_per_class=20, test_per_class=5)
    assert "CIFAR" not in type(stream).__name__ and "stand-in" in stream.describe()
    assert all(name.startswith("standin:") for name in stream.task_names)


@pytest.mark.parametrize("like, tasks, per_task", [("cifar10", 5, 2), ("cifar100", 10, 10)])
@pytest.mark.parametrize("scenario", ["task", "domain", "class"])
def test_standin_split_cifar_layout_and_heads(like, tasks, per_task, scenario):
    stream = SplitSyntheticStandIn(like=like, scenario=scenario, train_per_class=12, test_per_class=4)
    assert stream.num_tasks == tasks and stream.input_shape == (3, 32, 32)
    assert stream.class_groups == [list(range(t * per_task, (t + 1) * per_task)) for t in range(tasks)]
    expected_heads = {"task": [per_task] * tasks, "domain": [per_task], "class": [per_task * tasks]}[scenario]
    assert stream.head_sizes == expected_heads and stream.multihead == (scenario == "task")
    for task in (0, tasks - 1):
        batch = stream.test(task).batch()
        assert len(batch.y) == 4 * per_task and set(batch.t.tolist()) == {task}
        offset = task * per_task if scenario == "class" else 0
        assert sorted(set(batch.y.tolist())) == list(range(offset, offset + per_task))


def test_standin_uses_split_cifar10_per_channel_normalisation():
    stream = SplitSyntheticStandIn(like="cifar10", train_per_class=10, test_per_class=3)
    dataset = stream.test(2)
    mean, std = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1), torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    assert torch.allclose(dataset.batch().x, (dataset.images.float() / 255.0 - mean) / std)


@pytest.mark.parametrize("scenario, chance", [("class", 0.1), ("task", 0.5)])
def test_short_run_on_standin_beats_chance(run_config, scenario, chance):
    summary, _ = run_config("dataset=split_standin10", f"dataset.scenario={scenario}", "strategy=joint",
                            "dataset.train_per_class=100", "dataset.test_per_class=30")
    assert summary["dataset"] == "SplitSyntheticStandIn" and summary["name"] == "split_standin10-joint"
    assert all(name.startswith("standin:") for name in summary["task_names"])
    assert summary["ACC"] > chance + 0.25


def test_standin100_config_builds_the_split_cifar100_layout(tmp_path):
    cfg = compose_config(["dataset=split_standin100", "dataset.train_per_class=4", "dataset.test_per_class=2"],
                         tmp_path)
    stream = build(cfg.dataset, "dataset")
    assert stream.like == "cifar100" and stream.num_tasks == 10 and stream.head_sizes == [100]
    assert len(stream.test(9)) == 20 and sorted(set(stream.test(9).labels.tolist())) == list(range(90, 100))


# -- the real CIFAR streams --------------------------------------------------------------------
@pytest.mark.parametrize("name, label, folder", [("split_cifar10", "CIFAR-10", "cifar-10-batches-py"),
                                                 ("split_cifar100", "CIFAR-100", "cifar-100-python")])
def test_real_cifar_config_fails_offline_with_one_line(tmp_path, monkeypatch, name, label, folder):
    monkeypatch.setenv("RETENTIVE_OFFLINE", "1")
    cfg = compose_config([f"dataset={name}", f"paths.data_dir={tmp_path}"], tmp_path / "run")
    with pytest.raises(ConfigError) as error:
        build(cfg.dataset, "dataset")  # as the runner builds the stream, before any training
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"paths.data_dir: {label} not found")
    assert str(tmp_path / folder) in message and "set DATA_DIR" in message


def _write_cifar(root: Path, num_classes: int, per_class: int) -> dict[str, np.ndarray]:
    """CIFAR-format pickles (rows of 3072 = R, G, B planes) with known images; returns them as [N, 3, 32, 32]."""
    rng = np.random.default_rng(0)
    made = {}
    if num_classes == 10:
        folder, label_key = root / "cifar-10-batches-py", "labels"
        files = {f"data_batch_{i}": "train" for i in range(1, 6)} | {"test_batch": "test"}
        meta = ("batches.meta", {"label_names": [f"c{i}" for i in range(10)]})
    else:
        folder, label_key = root / "cifar-100-python", "fine_labels"
        files = {"train": "train", "test": "test"}
        meta = ("meta", {"fine_label_names": [f"c{i}" for i in range(100)]})
    folder.mkdir(parents=True)
    for name, split in files.items():
        labels = np.repeat(np.arange(num_classes), per_class)
        images = rng.integers(0, 256, size=(len(labels), 3, 32, 32), dtype=np.uint8)
        with (folder / name).open("wb") as handle:
            pickle.dump({"data": images.reshape(len(labels), -1), label_key: labels.tolist()}, handle)
        made[split] = np.concatenate([made[split], images]) if split in made else images
    with (folder / meta[0]).open("wb") as handle:
        pickle.dump(meta[1], handle)
    return made


@pytest.mark.parametrize("stream_class, num_classes, tasks", [(SplitCIFAR10, 10, 5), (SplitCIFAR100, 100, 10)])
def test_split_cifar_reads_cifar_files_channels_first(tmp_path, monkeypatch, stream_class, num_classes, tasks):
    """torchvision's own CIFAR reader on CIFAR-format files; only its md5 checks are skipped (the files
    are ours, not the published ones)."""
    import torchvision.datasets.cifar as tv_cifar

    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *args, **kwargs: True)
    monkeypatch.setenv("RETENTIVE_OFFLINE", "1")
    made = _write_cifar(tmp_path, num_classes, per_class=2)
    raw = load_torchvision(stream_class.cifar_source, tmp_path, train=False)
    assert raw.images.shape == (2 * num_classes, 3, 32, 32)
    assert torch.equal(raw.images, torch.from_numpy(made["test"]))  # RGB planes back in channel order
    stream = stream_class(data_dir=str(tmp_path), scenario="class", val_fraction=0.0)
    per_task = num_classes // tasks
    assert stream.num_tasks == tasks and stream.head_sizes == [num_classes]
    last = stream.test(tasks - 1)
    assert sorted(set(last.labels.tolist())) == list(range(num_classes - per_task, num_classes))
    mean, std = torch.tensor(stream_class.channel_mean).view(1, 3, 1, 1), torch.tensor(stream_class.channel_std)
    assert torch.allclose(last.batch().x, (last.images.float() / 255.0 - mean) / std.view(1, 3, 1, 1))
