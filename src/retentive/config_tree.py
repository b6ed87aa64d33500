"""The composed config as a rich tree: printed at the start of a run and saved as config_tree.txt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.tree import Tree

#: groups shown first (the rest follow in config order)
ORDER = ("dataset", "model", "strategy", "explanation", "schedule", "loader", "evaluation", "trainer")


def config_tree(cfg: DictConfig) -> Tree:
    """One branch per top-level key; leaves are `key: value` with interpolations resolved."""
    data: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    tree = Tree("[bold]config[/bold]")
    keys = [k for k in ORDER if k in data] + [k for k in data if k not in ORDER and k != "hydra"]
    for key in keys:
        _add(tree, key, data[key])
    return tree


def _add(parent: Tree, key: str, value: Any) -> None:
    if isinstance(value, dict) and value:
        branch = parent.add(f"[bold cyan]{key}[/bold cyan]")
        for child, child_value in value.items():
            _add(branch, str(child), child_value)
    else:
        parent.add(f"{key}: [green]{value!r}[/green]" if isinstance(value, str) else f"{key}: {value}")


def save_config_tree(cfg: DictConfig, output_dir: str | Path, show: bool = True) -> Path:
    """Print the tree (unless `show` is false) and write it, uncoloured, to `<output_dir>/config_tree.txt`."""
    tree = config_tree(cfg)
    if show:
        Console().print(tree)
    path = Path(output_dir) / "config_tree.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        Console(file=handle, width=120, color_system=None).print(tree)
    return path
