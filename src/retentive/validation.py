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

HEAD_CHOICES = ("auto", "single", "multi")


def validate_config(cfg: DictConfig) -> None:
    """Top-level keys whose bad values would otherwise fail deep inside Lightning."""
    schedule = cfg.schedule
    require(isinstance(schedule.epochs_per_task, int) and schedule.epochs_per_task >= 1,
            "schedule.epochs_per_task", f"{schedule.epochs_per_task!r} must be an integer >= 1")
    steps = schedule.get("steps_per_task")
    require(steps is None or (isinstance(steps, int) and steps >= 1),
            "schedule.steps_per_task", f"{steps!r} must be null or an integer >= 1")
    for key in ("batch_size", "eval_batch_size"):
        value = cfg.loader[key]
        require(isinstance(value, int) and value >= 1, f"loader.{key}", f"{value!r} must be an integer >= 1")
    require(cfg.evaluation.split in ("val", "test"), "evaluation.split",
            f"'{cfg.evaluation.split}' is not a split", "choose val or test")
    heads = cfg.model.get("heads", "auto")
    require(heads in HEAD_CHOICES, "model.heads", f"'{heads}' is not a head layout",
            f"choose one of {', '.join(HEAD_CHOICES)}")
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
    if heads == "multi" and scenario != "task":
        raise ConfigError("model.heads", f"'multi' needs task ids at test time, which {scenario}-IL does not give",
                          "use model.heads=auto|single, or dataset.scenario=task")
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
