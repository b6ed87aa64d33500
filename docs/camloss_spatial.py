"""Where the CAM-loss spatial-shortcut runs look (docs/reproductions.md, "CAM loss on a spatial shortcut").

    .venv/bin/python docs/camloss_spatial.py outputs/repro/camloss_spatial outputs/repro/camloss_spatial_cnn \
        > docs/camloss_spatial.csv
    .venv/bin/python docs/camloss_spatial.py --markdown docs/camloss_spatial.csv   # the table in the doc

One row per run (`<root>/<method>/seed<k>/checkpoints/last.pt`), measured on the first N test images
(DecoyMNIST test split: the patch in a random corner with the test-time code 25y):
- `acc`: test accuracy; `follows_patch`: share of the test digits whose patch still reads as a train-time
  code (y = 1..9 except 5, coded 255 - 25y' = 25y, y' = 10 - y) that the net labels y' — the shortcut used;
- `gradcam_patch`: share of |GradCAM| (last conv layer, predicted class) on the patch, the quantity lint's
  centre kernel pushes down; `saliency_patch`: the same for the input gradient (what the net is sensitive to).
  The patch covers 25 / 784 = 3.2 % of the image.
"""

from __future__ import annotations

import csv
import json
import statistics
import sys
from pathlib import Path

import torch

COLUMNS = ("family", "method", "seed", "acc", "follows_patch", "gradcam_patch", "saliency_patch")
SAMPLES = 2000


def measure(run: Path) -> dict:
    from retentive.evaluate import rebuild
    from retentive.probes.attribution import make_probe
    from retentive.probes.callback import mask_share
    from retentive.resume.checkpoint import load_checkpoint

    cfg, stream, net, _ = rebuild(load_checkpoint(run / "checkpoints" / "last.pt"))
    batch = stream.test(0).batch(torch.arange(SAMPLES))
    x, y, t, mask = batch.x, batch.y, batch.t, batch.mask
    with torch.no_grad():
        pred = net(x).argmax(1)
    coded = (y >= 1) & (y != 5)
    maps = {name: make_probe(name, **({"baseline": "none"} if name == "saliency" else {})).attribute(net, x, t, pred)
            for name in ("gradcam", "saliency")}
    return {
        "family": run.parent.parent.name, "method": run.parent.name, "seed": int(run.name.removeprefix("seed")),
        "acc": float((pred == y).float().mean()),
        "follows_patch": float((pred[coded] == 10 - y[coded]).float().mean()),
        "gradcam_patch": mask_share(maps["gradcam"], mask), "saliency_patch": mask_share(maps["saliency"], mask),
    }


def mean_std(values: list[float], digits: int = 1) -> str:
    """`mean ± sample std` (just the mean for one value): a cell of the docs' seed tables."""
    spread = f" ± {statistics.stdev(values):.{digits}f}" if len(values) > 1 else ""
    return f"{statistics.fmean(values):.{digits}f}{spread}"


def complete_runs(method_dir: Path) -> list[Path]:
    """The `seed<k>` runs of a method directory whose results.json says complete, in seed order."""
    runs = sorted(method_dir.glob("seed*"), key=lambda p: int(p.name.removeprefix("seed")))
    return [run for run in runs
            if (run / "results.json").exists() and json.loads((run / "results.json").read_text())["status"] == "complete"]


def markdown(rows: list[dict], columns: tuple[str, ...] = COLUMNS) -> str:
    """Mean ± std over seeds of every measured column (in percent), one line per (family, method)."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["family"], row["method"]), []).append(row)
    lines = ["| runs | method | seeds | " + " | ".join(columns[3:]) + " |", "|---|---|---|" + "---|" * len(columns[3:])]
    for (family, method), group in groups.items():
        cells = [mean_std([100 * float(r[column]) for r in group]) for column in columns[3:]]
        lines.append(f"| {family} | {method} | {len(group)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    if argv[:1] == ["--markdown"]:
        with open(argv[1], newline="") as handle:
            print(markdown(list(csv.DictReader(handle))))
        return
    torch.manual_seed(0)
    writer = csv.DictWriter(sys.stdout, COLUMNS, lineterminator="\n")
    writer.writeheader()
    for root in map(Path, argv):
        for run in sorted(root.glob("*/seed*")):
            if (run / "checkpoints" / "last.pt").exists():
                row = measure(run)
                writer.writerow({k: f"{v:.4f}" if isinstance(v, float) else v for k, v in row.items()})


if __name__ == "__main__":
    main(sys.argv[1:])
