"""Checks that turn config mistakes into one-line ConfigErrors before any training starts."""

from __future__ import annotations

import re
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from retentive.data.stream import TaskStream
from retentive.errors import ConfigError, require
from retentive.models.continual_net import ContinualNet
from retentive.schema.check import check_config, check_heads


def validate_config(cfg: DictConfig) -> None:
    """The schema (retentive.schema: every key's type and range, impossible combinations; the CLI already
    checked it before importing torch, the Python API gets it here) and the Trainer keys retentive owns."""
    check_config(cfg)
    for reserved in ("max_epochs", "max_steps", "callbacks", "logger"):
        require(reserved not in cfg.trainer, f"trainer.{reserved}", "is set by retentive per task",
                "use schedule.epochs_per_task / schedule.steps_per_task, or the callbacks/logger groups")


def build(node: DictConfig, key: str) -> Any:
    """`hydra.utils.instantiate`, with its errors for bad keys or values reduced to one line."""
    try:
        return instantiate(node)
    except InstantiationException as error:
        cause = error.__cause__
        if isinstance(cause, ConfigError):
            raise cause from None
        message = str(cause or error)
        unexpected = re.search(r"unexpected keyword argument '(\w+)'", message)
        if unexpected:
            raise ConfigError(f"{key}.{unexpected.group(1)}", "is not an option here",
                              f"remove it; see conf/{key.split('.')[0]}/ for the options") from None
        raise ConfigError(key, f"could not be built: {message.splitlines()[0]}") from None


def head_layout(scenario: str, heads: str) -> bool:
    """Whether the net is multi-head, from the scenario and `model.heads`."""
    check_heads(scenario, heads)
    return scenario == "task" if heads == "auto" else heads == "multi"


def model_capabilities(net: ContinualNet) -> set[str]:
    capabilities = {"linear_head"}
    if net.last_conv() is not None:
        capabilities.add("conv")
    return capabilities


def check_compatible(stream: TaskStream, net: ContinualNet, strategy: Any, explanation: Any, *probes: Any) -> None:
    """Combinations that cannot work: missing masks, a model lacking what a method needs."""
    capabilities = model_capabilities(net)
    owners = [("strategy", strategy), ("explanation", explanation), *(("probes", p) for p in probes)]
    for owner, obj in owners:
        if obj is None:
            continue
        missing = [need for need in getattr(obj, "needs", ()) if need not in capabilities]
        if missing:
            name = getattr(obj, "config_label", type(obj).__name__)  # e.g. which probe needs it
            raise ConfigError(owner, f"{name} needs a model with {', '.join(missing)}",
                              "use model=cnn" if "conv" in missing else "pick another model")
    for probe in probes:
        if hasattr(probe, "check_model"):
            probe.check_model(net)  # e.g. a GradCAM layer that must exist
    if explanation is not None and hasattr(explanation, "check"):
        explanation.check(net)  # e.g. CDEP: every layer decomposable; CAM loss: a conv layer
    if explanation is not None and getattr(explanation, "needs_mask", False) and not stream.has_masks:
        raise ConfigError("explanation", f"{type(explanation).__name__} needs masks of the spurious region but "
                          f"{type(stream).__name__} has none",
                          "use a dataset with masks (color_mnist, decoy_mnist, ...) or explanation=none")
