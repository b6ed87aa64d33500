"""Collects the explanation-drift demo runs (docs/drift.md) into docs/drift_demo.csv.

    .venv/bin/python docs/drift_demo.py outputs/drift_demo > docs/drift_demo.csv
    .venv/bin/python docs/drift_demo.py outputs/drift_demo --markdown   # the tables in docs/drift.md

One CSV row per run (`<root>/<strategy>/seed<s>/`), attribution method and similarity. `chance` is
the mean random-init level b[j]; `D_final_rel` the final row rescaled so that 1 = unchanged and 0 =
as far as the random-init net, mean over j < T-1 of (D[T-1][j] - b[j]) / (1 - b[j]). `D_next` and
`acc_next` compare each task j one task later (mean over j of D[j+1][j] and of R[j+1][j] / R[j][j]);
`D_q1` and `acc_q1` do the same at the first evaluation inside task j+1 (a quarter epoch in, with
`trainer.val_check_interval=0.25`; validation accuracy relative to task j's last validation);
`n_kept` counts the tasks j whose accuracy there is still >= 90% of their own, and `D_q1_kept` is
the mean D over those: explanation drift before accuracy has dropped.
"""

from __future__ import annotations

import csv
import json
import statistics
import sys
from pathlib import Path

COLUMNS = ("strategy", "seed", "method", "similarity", "ACC", "BWT", "forgetting", "drift",
           "explanation_forgetting", "chance", "D_final_rel", "D_next", "acc_next", "D_q1", "acc_q1", "n_kept", "D_q1_kept")
KEPT = 0.9  # accuracy "not dropped yet": at least 90% of the task's own accuracy


def rows_of(run: Path) -> list[dict]:
    results = json.loads((run / "results.json").read_text())
    val = [r for r in csv.DictReader((run / "metrics.csv").open()) if r["split"] == "val"]
    section, r = results["explanation_drift"], results["accuracy_matrix"]
    tasks = len(r)

    def val_acc(trained: int, task: int, step: int | None = None) -> float:
        points = [x for x in val if int(x["trained_task"]) == trained and int(x["eval_task"]) == task]
        point = points[-1] if step is None else next(x for x in points if int(x["step"]) == step)
        return float(point["accuracy"])

    out = []
    for method, by_similarity in section["matrices"].items():
        for similarity, d in by_similarity.items():
            first = {}
            for h in section["history"]:
                key = (h["trained_task"], h["eval_task"])
                if h["method"] == method and h["similarity"] == similarity and key[0] == key[1] + 1:
                    first.setdefault(key, h)  # history is in step order: the first point inside the next task
            scores = section["scores"][method][similarity]
            b = section["random_init_similarity"][method][similarity]
            q1 = [(first[(j + 1, j)]["value"], val_acc(j + 1, j, first[(j + 1, j)]["step"]) / val_acc(j, j))
                  for j in range(tasks - 1)]
            kept = [value for value, retention in q1 if retention >= KEPT]
            out.append({
                "strategy": run.parent.name, "seed": int(run.name.removeprefix("seed")), "method": method,
                "similarity": similarity, "ACC": results["ACC"], "BWT": results["BWT"],
                "forgetting": results["forgetting"], **scores, "chance": statistics.fmean(b),
                "D_final_rel": statistics.fmean((d[-1][j] - b[j]) / (1 - b[j]) for j in range(tasks - 1)),
                "D_next": statistics.fmean(d[j + 1][j] for j in range(tasks - 1)),
                "acc_next": statistics.fmean(r[j + 1][j] / r[j][j] for j in range(tasks - 1)),
                "D_q1": statistics.fmean(value for value, _ in q1),
                "acc_q1": statistics.fmean(retention for _, retention in q1),
                "n_kept": len(kept), "D_q1_kept": statistics.fmean(kept) if kept else "",
            })
    return out


def markdown(rows: list[dict]) -> str:
    """Mean ± std over seeds per strategy, method and similarity."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["strategy"], row["method"], row["similarity"]), []).append(row)
    metrics = COLUMNS[4:]
    lines = ["| strategy | method | similarity | n | " + " | ".join(metrics) + " |", "|" + "---|" * (4 + len(metrics))]
    for (strategy, method, similarity), members in groups.items():
        cells = []
        for metric in metrics:
            values = [float(m[metric]) for m in members if m[metric] != ""]
            if not values:
                cells.append("–")
                continue
            std = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.fmean(values):.3f} ± {std:.3f}")
        lines.append(f"| {strategy} | {method} | {similarity} | {len(members)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(root: Path, as_markdown: bool) -> None:
    order = ["naive", "ewc", "er", "derpp"]
    runs = sorted((p.parent for p in root.glob("*/seed*/results.json")
                   if json.loads(p.read_text()).get("status") == "complete"),
                  key=lambda p: (order.index(p.parent.name) if p.parent.name in order else 99, p.name))
    rows = [row for run in runs for row in rows_of(run)]
    if as_markdown:
        print(markdown(rows))
        return
    writer = csv.DictWriter(sys.stdout, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()})


if __name__ == "__main__":
    main(Path(sys.argv[1]), "--markdown" in sys.argv[2:])
