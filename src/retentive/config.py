"""Compose the Hydra config outside the CLI (tests, notebooks): `compose_config([...], output_dir)`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

# `conf/` lives at the project's top level (the layout Hydra users know); `src/retentive/conf` links to
# it, and a regular (non-editable) install ships a copy inside the package, so both find it here.
CONF_DIR = (Path(__file__).parent / "conf").resolve()


def compose_config(overrides: Sequence[str] = (), output_dir: str | Path = "outputs/notebook") -> DictConfig:
    """The config `python -m retentive.train <overrides>` would use, writing to `output_dir`."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        del cfg.hydra
    return cfg
