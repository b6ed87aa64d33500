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


def markdown(rows: list[dict], columns: tuple[str, ...] = COLUMNS) -> str:
    """Mean ± std over seeds of every measured column (in percent), one line per (family, method)."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["family"], row["method"]), []).append(row)
    lines = ["| runs | method | seeds | " + " | ".join(columns[3:]) + " |", "|---|---|---|" + "---|" * len(columns[3:])]
    for (family, method), group in groups.items():
        cells = []
        for column in columns[3:]:
            values = [100 * float(r[column]) for r in group]
            spread = f" ± {statistics.stdev(values):.1f}" if len(values) > 1 else ""
            cells.append(f"{statistics.fmean(values):.1f}{spread}")
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
