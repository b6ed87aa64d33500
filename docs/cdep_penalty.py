"""Is the CDEP penalty still on at the end of a run? (docs/reproductions.md, "The CDEP authors' protocols")

    cd outputs/repro/cdep2020 && ../../../.venv/bin/python ../../../docs/cdep_penalty.py \\
        color_{vanilla,cdep,cdep_w500,cdep_w1000} decoy_{vanilla,cdep} > ../../../docs/cdep_penalty.csv
    .venv/bin/python docs/cdep_penalty.py --markdown docs/cdep_penalty.csv   # the table in the doc

One row per finished run, on the weights it tested and the first 1,024 digits of its train split: the authors'
penalty, unweighted (ColorMNIST: 8 single pixels drawn as their script draws them, each pixel's mean
softmax(rel, irrel)[0] over samples and classes, summed over the 8; DecoyMNIST: the whole decoy mask as one
group), the mean of `rel` (the penalised pixels' contribution to every logit) and of `irrel` (everything
else's), and the logits' mean distance from their per-sample class mean — how far apart the net puts the
classes (the softmax ignores a shift shared by all 10 logits; the penalty does not).

The causal check is `retentive.callbacks.explanation_cutoff.ExplanationCutoff`: the same protocol with the penalty
switched off after its first 10 steps (bench/lanes/issue9_runs.sh, `color_cdep_cutoff10`).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import torch
from camloss_spatial import complete_runs, mean_std

COLUMNS = ("family", "method", "seed", "acc", "penalty", "rel_mean", "irrel_mean", "logit_spread")
SAMPLES, BLOBS = 1024, 8


def measure(run: Path) -> dict:
    from retentive.evaluate import rebuild
    from retentive.explanations.cdep import cdep_score, sample_batch_pixels
    from retentive.explanations.contextual_decomposition import decompose
    from retentive.resume.checkpoint import load_checkpoint

    cfg, stream, net, _ = rebuild(load_checkpoint(run / "checkpoints" / "last.pt"))
    batch = stream.train(0).batch(torch.arange(SAMPLES))
    blobs = BLOBS if cfg.dataset._target_.endswith("ColorMNIST") else 1  # ColorMNIST: single pixels; decoy: the mask
    mask = batch.mask.float()
    if blobs > 1:
        mask = sample_batch_pixels(mask, blobs, torch.Generator().manual_seed(0))
    x = batch.x.repeat(blobs, 1, 1, 1)
    with torch.no_grad():
        rel, irrel = decompose(net, x * mask, x * (1.0 - mask))
        logits = net(batch.x)
    penalty = sum(cdep_score(r, i) for r, i in zip(rel.chunk(blobs), irrel.chunk(blobs), strict=True))
    return {
        "family": run.parent.parent.name, "method": run.parent.name, "seed": int(run.name.removeprefix("seed")),
        "acc": json.loads((run / "results.json").read_text())["ACC"], "penalty": float(penalty),
        "rel_mean": float(rel.mean()), "irrel_mean": float(irrel.mean()),
        "logit_spread": float((logits - logits.mean(1, keepdim=True)).abs().mean()),
    }


def markdown(rows: list[dict]) -> str:
    """Mean ± std over seeds per method (accuracy in percent, the rest as measured)."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["method"], []).append(row)
    lines = ["| runs | seeds | test acc | penalty | rel mean | irrel mean | logit spread |", "|---|---|---|---|---|---|---|"]
    for method, group in groups.items():
        cells = [mean_std([scale * float(r[column]) for r in group], digits) for column, scale, digits in
                 (("acc", 100, 1), ("penalty", 1, 4), ("rel_mean", 1, 2), ("irrel_mean", 1, 1), ("logit_spread", 1, 2))]
        lines.append(f"| `{method}` | {len(group)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    if argv[:1] == ["--markdown"]:
        with open(argv[1], newline="") as handle:
            print(markdown(list(csv.DictReader(handle))))
        return
    writer = csv.DictWriter(sys.stdout, COLUMNS, lineterminator="\n")
    writer.writeheader()
    for method_dir in map(Path, argv):
        for run in complete_runs(method_dir):
            row = measure(run)
            writer.writerow({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()})


if __name__ == "__main__":
    main(sys.argv[1:])
