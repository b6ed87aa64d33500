"""The launcher presets compose: SLURM (submitit) always; Ray where its plugin is installed."""

from __future__ import annotations

import importlib.util

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from retentive.config import CONF_DIR


def _compose(overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=overrides, return_hydra_config=True)


def test_the_slurm_preset_composes_with_submitit_and_leaves_time_to_checkpoint():
    cfg = _compose(["hydra/launcher=slurm", "hydra.launcher.partition=gpu", "hydra.launcher.gpus_per_node=1"])
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert launcher.partition == "gpu" and launcher.gpus_per_node == 1 and launcher.timeout_min == 240
    assert launcher.signal_delay_s >= 60  # SIGTERM early enough for the checkpoint written on SIGTERM


@pytest.mark.skipif(importlib.util.find_spec("hydra_plugins.hydra_ray_launcher") is None,
                    reason="hydra-ray-launcher not installed (it pins cloudpickle<3, which joblib>=1.5 rejects)")
def test_the_ray_preset_composes():
    cfg = _compose(["hydra/launcher=ray_local"])
    assert "ray" in cfg.hydra.launcher._target_.lower() and cfg.hydra.launcher.ray.remote.num_cpus == 2
