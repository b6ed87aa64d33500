"""`python -m retentive.surgery <run dir> [options]`: importance-guided surgery on a run's checkpoint.

Every check that can fail (options, the checkpoint, which importances exist) runs before any data
is loaded or any weight is touched; a failure is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path
from typing import Any, NoReturn

from retentive.errors import ConfigError

DEFAULT_P = [round(0.05 * i, 2) for i in range(21)]
DESCRIPTION = ("Replace the fraction p least (or most) important weights of a run's net by zero or noise "
               "N(0, std(w)/10), for every importance and p, and write the validation loss and accuracy to "
               "<run dir>/surgery/ (surgery.csv, one PNG per scope/replace setting).")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2 (cli() prints it), not argparse's usage dump
        raise ConfigError("arguments", message, "see python -m retentive.surgery --help")


def parser() -> argparse.ArgumentParser:
    from retentive.surgery.importances import NAMES

    p = _Parser(prog="python -m retentive.surgery", description=DESCRIPTION)
    p.add_argument("run_dir", help="a run's output dir (holding checkpoints/)")
    p.add_argument("--checkpoint", default="last.pt", help="file in <run dir>/checkpoints/ (default last.pt)")
    p.add_argument("--importance", nargs="+", choices=NAMES, default=None, metavar="NAME",
                   help=f"importances to compare ({', '.join(NAMES)}); default: the run's own plus random")
    p.add_argument("--remove", nargs="+", choices=("least", "most"), default=["least", "most"],
                   help="replace the least and/or the most important weights (default both)")
    p.add_argument("--scope", nargs="+", choices=("model", "layer"), default=["model"],
                   help="quantiles over the whole model or within each layer (default model)")
    p.add_argument("--replace", nargs="+", choices=("zero", "noise"), default=["zero"],
                   help="replace by zero or by noise N(0, std(w)/10) (default zero)")
    p.add_argument("--p", nargs="+", type=float, default=DEFAULT_P, dest="fractions", metavar="P",
                   help="fractions of weights to replace (default 0, 0.05, ..., 1)")
    p.add_argument("--params", choices=("backbone", "all"), default="backbone",
                   help="the weights surgery may touch: backbone (what importance strategies protect) or all")
    p.add_argument("--split", choices=("val", "test"), default="val", help="evaluation split (default val)")
    p.add_argument("--examples", type=int, default=1000,
                   help="examples per task for a Fisher or MAS computed from the checkpoint (default 1000)")
    p.add_argument("--max-samples", type=int, default=None, help="cap on evaluation samples per task")
    p.add_argument("--seed", type=int, default=0, help="tie-break order, noise draw, random importance")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--out", default=None, help="output dir (default <run dir>/surgery)")
    return p


def parse(argv: list[str]) -> argparse.Namespace:
    args = parser().parse_args(argv)
    bad = [f for f in args.fractions if not 0.0 <= f <= 1.0]
    if bad:
        raise ConfigError("--p", f"{bad[0]} is not a fraction", "give values in [0, 1]")
    for key in ("examples", "batch_size", "max_samples"):
        value = getattr(args, key)
        if value is not None and value < 1:
            raise ConfigError(f"--{key.replace('_', '-')}", f"must be >= 1, got {value}")
    return args


def checkpoint_path(run_dir: str, name: str) -> Path:
    run = Path(run_dir)
    if not run.is_dir():
        raise ConfigError("run_dir", f"{run} is not a directory", "pass a run's output dir (outputs/<date>/<time>)")
    path = run / "checkpoints" / name
    if not path.is_file():
        raise ConfigError("run_dir", f"{run} has no checkpoints/{name}",
                          "the run stopped before its first checkpoint, or pass --checkpoint after_task<k>.pt")
    return path


def surgery(args: argparse.Namespace, say: Any = print) -> dict[str, Any]:
    """Checks (one line each), then the sweep; returns the rows and the files written."""
    import torch

    from retentive.data.loaders import plain_loader
    from retentive.evaluate import rebuild
    from retentive.resume.checkpoint import load_checkpoint
    from retentive.surgery.importances import (
        check_covers,
        compute,
        plan,
        stored_importance,
        stored_name,
    )
    from retentive.surgery.sweep import Setting, sweep

    state = load_checkpoint(checkpoint_path(args.run_dir, args.checkpoint))
    sources = plan(state, args.importance, args.run_dir)  # before any work
    strategy_name, _ = stored_name(state["config"])
    _, stream, net, strategy = rebuild(state)
    params = {n: p for n, p in net.named_parameters()
              if p.requires_grad and (args.params == "all" or n.startswith("backbone."))}
    stored = stored_importance(state)
    for source in sources:
        if source.how == "stored":
            check_covers(source.name, stored, params, strategy_name)
    tasks = range(state["position"]["task"] + 1)
    say(f"{args.run_dir}: {strategy_name}, {len(params)} tensors / {sum(p.numel() for p in params.values()):,} "
        f"weights ({args.params}), tasks {list(tasks)}; importances: "
        + ", ".join(f"{s.name} ({s.how})" for s in sources))
    importances = {}
    for source in sources:
        if source.how == "stored":
            importances[source.name] = {n: stored[n] for n in params}
        else:
            batches = [plain_loader(stream.train(t), 256) for t in tasks]
            importances[source.name] = compute(source.name, net, params, batches, args.examples, args.seed)
    datasets = [getattr(stream, args.split)(t) for t in tasks]
    if args.max_samples:
        datasets = [d.subset(torch.arange(min(args.max_samples, len(d)))) for d in datasets]
    settings = [Setting(r, s, x) for s in args.scope for x in args.replace for r in args.remove]
    rows = sweep(net, strategy, datasets, params, importances, {s.name: s.how for s in sources},
                 sorted(set(args.fractions)), settings, args.seed, args.batch_size, report=lambda row: say(_line(row)))
    return {"rows": rows, "files": write(args, rows, state, sources, strategy_name)}


def _line(row: dict[str, Any]) -> str:
    return (f"  {row['importance']:>18} {row['remove']:>5} {row['scope']:>5} {row['replace']:>5}  p={row['p']:.3f}  "
            f"replaced {row['replaced']:>9,}/{row['total']:,}  loss {row['loss']:.4f}  acc {100 * row['accuracy']:.2f}%")


def write(args: argparse.Namespace, rows: list[dict[str, Any]], state: dict[str, Any], sources: list[Any],
          strategy_name: str) -> list[Path]:
    from retentive.storage.atomic import atomic_write_text
    from retentive.surgery.plot import plot_sweep
    from retentive.surgery.sweep import COLUMNS

    out = Path(args.out) if args.out else Path(args.run_dir) / "surgery"
    out.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    files = [atomic_write_text(out / "surgery.csv", buffer.getvalue())]
    meta = {"run_dir": str(args.run_dir), "checkpoint": args.checkpoint, "position": state["position"],
            "strategy": strategy_name, "importances": {s.name: s.how for s in sources}, "params": args.params,
            "split": args.split, "examples_per_task": args.examples, "max_samples": args.max_samples,
            "seed": args.seed}
    files.append(atomic_write_text(out / "surgery.json", json.dumps(meta, indent=2)))
    for scope in args.scope:
        for replace in args.replace:
            part = [r for r in rows if r["scope"] == scope and r["replace"] == replace]
            title = (f"{Path(args.run_dir).name} ({strategy_name}): {scope}-wise quantiles, replaced by {replace}"
                     + (" N(0, std(w)/10)" if replace == "noise" else ""))
            files.append(plot_sweep(part, out / f"surgery_{scope}_{replace}.png", args.split, title))
    return files


def cli(argv: list[str] | None = None) -> None:
    try:
        args = parse(sys.argv[1:] if argv is None else argv)
        result = surgery(args)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    print("written: " + ", ".join(str(f) for f in result["files"]))
