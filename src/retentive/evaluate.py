"""`python -m retentive.evaluate ckpt_path=<checkpoint> [split=test|val] [batch_size=1024]`.

Re-tests every task of a run from one of its checkpoints: the config stored in the checkpoint
rebuilds the stream and the network, the weights are loaded weights-only, and the accuracy per
task is printed and written next to the run as `evaluation_<checkpoint>.json` (with the
Task-IL-by-masking accuracy too when the run set `evaluation.task_masked`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from retentive.errors import ConfigError

USAGE = "python -m retentive.evaluate ckpt_path=<run>/checkpoints/last.pt [split=test|val] [batch_size=1024]"


def rebuild(state: dict[str, Any]) -> tuple[DictConfig, Any, Any, Any]:
    """(config, stream, net, strategy) of a loaded checkpoint: the stored config rebuilds the stream
    and the net, the net gets the checkpoint's weights (eval mode), the strategy its state (some
    classify with it, e.g. iCaRL's class means). Shared with `retentive.surgery`."""
    from retentive.runner import build_network
    from retentive.validation import build

    cfg = OmegaConf.create(state["config"])
    stream = build(cfg.dataset, "dataset")
    net = build_network(cfg, stream)
    net.load_state_dict(state["net"])
    net.eval()
    strategy = build(cfg.strategy, "strategy")
    strategy.setup(net)
    strategy.load_state_dict(state["strategy"])
    return cfg, stream, net, strategy


@torch.no_grad()
def score(strategy: Any, net: torch.nn.Module, dataset: Any, batch_size: int = 1024,
          units: list[int] | None = None) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of `net` on `dataset`, classifying by `strategy.eval_logits`;
    with `units`, only those output units compete (the task's own: Task-IL by masking)."""
    from retentive.data.loaders import plain_loader
    from retentive.module import mask_other_tasks

    correct, total, summed = 0, 0, 0.0
    for batch in plain_loader(dataset, batch_size):
        logits = strategy.eval_logits(net, batch)
        if units is not None:
            logits = mask_other_tasks(logits, units)
        correct += int((logits.argmax(1) == batch.y).sum())
        summed += float(torch.nn.functional.cross_entropy(logits, batch.y, reduction="sum"))
        total += len(batch)
    return correct / max(total, 1), summed / max(total, 1)


def evaluate_checkpoint(ckpt_path: str | Path, split: str = "test", batch_size: int = 1024) -> dict[str, Any]:
    """Accuracy and loss of the checkpoint's network on every task's `split`."""
    from retentive.resume.checkpoint import load_checkpoint

    if split not in ("test", "val"):
        raise ConfigError("split", f"'{split}' is not a split", "choose test or val")
    state = load_checkpoint(ckpt_path)
    cfg, stream, net, strategy = rebuild(state)
    accuracy, loss = [], []
    for task in range(stream.num_tasks):
        task_accuracy, task_loss = score(strategy, net, getattr(stream, split)(task), batch_size)
        accuracy.append(task_accuracy)
        loss.append(task_loss)
    position = state["position"]
    seen = position["task"] + 1
    report = {"checkpoint": str(ckpt_path), "split": split, "position": position, "task_names": stream.task_names,
              "accuracy": accuracy, "loss": loss, "ACC_seen": sum(accuracy[:seen]) / seen}
    if cfg.get("evaluation", {}).get("task_masked", False):
        masked = [score(strategy, net, getattr(stream, split)(task), batch_size, stream.task_output_units[task])[0]
                  for task in range(stream.num_tasks)]
        report |= {"accuracy_task_masked": masked, "ACC_seen_task_masked": sum(masked[:seen]) / seen}
    return report


def _parse(args: list[str]) -> dict[str, str]:
    options = {}
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep or key not in ("ckpt_path", "split", "batch_size"):
            raise ConfigError(key or arg, "is not an option of retentive.evaluate", f"usage: {USAGE}")
        options[key] = value
    if "ckpt_path" not in options:
        raise ConfigError("ckpt_path", "is required", f"usage: {USAGE}")
    if not options.get("batch_size", "1").isdigit() or int(options.get("batch_size", "1")) < 1:
        raise ConfigError("batch_size", f"{options['batch_size']!r} must be an integer >= 1")
    return options


def cli(argv: list[str] | None = None) -> None:
    try:
        options = _parse(sys.argv[1:] if argv is None else argv)
        report = evaluate_checkpoint(options["ckpt_path"], options.get("split", "test"),
                                     int(options.get("batch_size", 1024)))
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    path = Path(options["ckpt_path"])
    out = path.parent.parent / f"evaluation_{path.stem}.json"
    out.write_text(json.dumps(report, indent=2))
    position = report["position"]
    print(f"checkpoint after task {position['task']} (epoch {position['epoch']}, step {position['global_step']}), "
          f"{report['split']} split:")
    for task, (name, acc) in enumerate(zip(report["task_names"], report["accuracy"], strict=True)):
        print(f"  task {task} ({name}): {100 * acc:.2f}%")
    if "accuracy_task_masked" in report:
        print(f"Task-IL by masking (each task's own units): mean over tasks seen "
              f"{100 * report['ACC_seen_task_masked']:.2f}%")
    print(f"mean over tasks seen: {100 * report['ACC_seen']:.2f}%  written to {out}")


if __name__ == "__main__":
    cli()
