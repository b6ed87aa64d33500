"""What the probes cost: time in the probes vs time training, measured inside one run.

One Split MNIST run (Class-IL, 5 tasks) with `model=cnn` (`--model mlp` for the MLP) and the probes at their defaults
(`probes=default`: saliency, integrated gradients, occlusion on 2 test images per task, figures
written and sent to TensorBoard). `AttributionProbes` times its own work per method and for the
figures, and the time inside `trainer.fit` (training steps plus the per-epoch validation), and
writes both to results.json (`probes`). Ratio = probe seconds / fit seconds; target <= 10 %.
`--steps` optimizer steps per task keep the run short on a CPU (the probes' cost per task end does
not depend on it; the ratio falls as tasks get longer).

    DATA_DIR=../shared/data OMP_NUM_THREADS=1 python bench/probe_cost.py --steps 300
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from retentive.config import compose_config
from retentive.runner import run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps per task (batch 128); 0: one epoch")
    parser.add_argument("--model", default="cnn", help="cnn | mlp")
    parser.add_argument("--probes", default="default", help="probes config (default | gradcam | [gradcam,inspection])")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        steps = f"schedule.steps_per_task={args.steps or 'null'}"
        cfg = compose_config(["dataset=split_mnist", f"model={args.model}", f"probes={args.probes}", "callbacks=none",
                              steps], out)
        start = time.perf_counter()
        summary = run(cfg, out)
        wall = time.perf_counter() - start
        figures = sorted(str(p.relative_to(out)) for p in (out / "probes").rglob("*.png"))
    probes = summary["probes"]
    inspection = summary.get("inspection", {}).get("seconds", 0.0)
    spent = probes["seconds"] + inspection
    row = {"steps_per_task": args.steps or "one epoch", "model": args.model, "probes": args.probes, "fit_s": probes["fit_seconds"], "probe_s": spent,
           "ratio": spent / probes["fit_seconds"], "by_part": probes["seconds_by_part"], "inspection_s": inspection,
           "run_wall_s": wall, "figures": len(figures), "final_row": summary["accuracy_matrix"][-1],
           "device": torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu x{args.threads} threads"}
    print(f"Split MNIST, model={args.model}, probes={args.probes}, {row['steps_per_task']} steps/task, {row['device']}")
    print(f"time in trainer.fit {row['fit_s']:.1f} s | in the probes {spent:.2f} s | ratio {100 * row['ratio']:.2f} % "
          f"| run wall time {wall:.1f} s (probes {100 * spent / wall:.2f} % of it) | {len(figures)} figures")
    print("probe seconds by part: " + ", ".join(f"{k} {v:.2f}" for k, v in probes["seconds_by_part"].items())
          + (f", inspection {inspection:.2f}" if inspection else ""))
    if args.json:
        Path(args.json).write_text(json.dumps(row, indent=2))


if __name__ == "__main__":
    main()
