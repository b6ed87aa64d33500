"""Table of the explanation-guided comparison (bench/lanes/explanation_guided.sh): ER vs saliency replay,
LwF vs attention distillation — accuracy and explanation drift, mean ± std over seeds.
Usage: python docs/explanation_guided.py [root]  -> docs/explanation_guided.csv and a markdown table on stdout."""

from __future__ import annotations

import csv
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(sys.argv[1] if len(sys.argv) > 1 else "outputs/explanation_guided")
METRICS = ("ACC", "BWT", "drift", "explanation_forgetting")
OUT = Path(__file__).with_name("explanation_guided.csv")


def main() -> None:
    rows = []
    for setting in sorted(p for p in ROOT.glob("*/*") if p.is_dir()):
        runs = [json.loads(r.read_text()) for r in sorted(setting.glob("seed*/results.json"))]
        runs = [r for r in runs if r.get("status") == "complete"]
        if not runs:
            continue
        row = {"dataset": setting.parent.name, "strategy": setting.name, "scenario": runs[0]["scenario"],
               "seeds": ";".join(str(r["seed"]) for r in runs)}
        for metric in METRICS:
            values = [100 * r[metric] if metric in ("ACC", "BWT") else r[metric] for r in runs]
            row[metric] = round(statistics.mean(values), 3)
            row[f"{metric}_std"] = round(statistics.stdev(values), 3) if len(values) > 1 else 0.0
        rows.append(row)
    with OUT.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["dataset"])
        writer.writeheader()
        writer.writerows(rows)
    print("| dataset | scenario | strategy | seeds | ACC % | BWT % | drift | explanation forgetting |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['dataset']} | {r['scenario']} | {r['strategy']} | {r['seeds']} | {r['ACC']:.2f} ± {r['ACC_std']:.2f} "
              f"| {r['BWT']:.2f} ± {r['BWT_std']:.2f} | {r['drift']:.3f} ± {r['drift_std']:.3f} "
              f"| {r['explanation_forgetting']:.3f} ± {r['explanation_forgetting_std']:.3f} |")


if __name__ == "__main__":
    main()
