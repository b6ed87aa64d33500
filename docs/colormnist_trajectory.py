"""When the ColorMNIST CDEP lottery is drawn: accuracy on test-coloured digits across the one epoch.

    .venv/bin/python docs/colormnist_trajectory.py outputs/repro/cdep2020_probe/trajectory > docs/colormnist_trajectory.csv
    .venv/bin/python docs/colormnist_trajectory.py --markdown docs/colormnist_trajectory.csv   # the table in the doc

The runs are the authors' protocol (`experiment=cdep2020_color_cdep`) validated every 10 steps
(`trainer.val_check_interval=0.05 '~callbacks.early_stopping'`; with one epoch early stopping chooses nothing, and
the extra checks draw no random numbers: seeds 0 and 9 end on the 1-epoch row's own test accuracies). Their
validation split is coloured like the test split (class y in colour 9 - y), so its accuracy at step k is what the
test accuracy would have been had training stopped there. One CSV row per (seed, step): the run's `metrics.csv`
validation rows, then its final test accuracy as step "test".
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from camloss_spatial import complete_runs

COLUMNS = ("seed", "step", "accuracy")
STEPS = (50, 100, 150, 200)  # the columns of the markdown table, beside the peak and the final test accuracy


def trajectory(run: Path) -> list[dict]:
    """The run's validation accuracy per step, then its test accuracy."""
    seed = int(run.name.removeprefix("seed"))
    with open(run / "metrics.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["trained_task"] == "0"]
    points = [{"seed": seed, "step": r["step"], "accuracy": float(r["accuracy"])} for r in rows if r["split"] == "val"]
    final = [float(r["accuracy"]) for r in rows if r["split"] == "test"]
    return points + [{"seed": seed, "step": "test", "accuracy": final[-1]}]


def markdown(rows: list[dict]) -> str:
    """One line per seed: accuracy (percent) at a few steps, the peak and where it was, the final test accuracy."""
    by_seed: dict[str, dict[str, float]] = {}
    for row in rows:
        by_seed.setdefault(str(row["seed"]), {})[str(row["step"])] = 100 * float(row["accuracy"])
    lines = ["| seed | " + " | ".join(f"step {s}" for s in STEPS) + " | peak (step) | test (step 211) |",
             "|---|" + "---|" * (len(STEPS) + 2)]
    for seed, points in sorted(by_seed.items(), key=lambda item: int(item[0])):
        steps = {int(k): v for k, v in points.items() if k != "test"}
        peak = max(steps, key=lambda s: steps[s])
        cells = [f"{steps[s]:.1f}" for s in STEPS] + [f"{steps[peak]:.1f} ({peak})", f"{points['test']:.2f}"]
        lines.append(f"| {seed} | " + " | ".join(cells) + " |")
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
            for row in trajectory(run):
                writer.writerow({**row, "accuracy": f"{row['accuracy']:.4f}"})


if __name__ == "__main__":
    main(sys.argv[1:])
