"""Per-epoch time and peak memory of vanilla training vs RRR, CDEP and the CAM loss, one run.

Every method trains the same net (CDEP's conv 20/50, fc 500) on the same DecoyMNIST samples with
the same batches, through `ContinualModule.training_step` under a plain Lightning Trainer. Each
(method, round) runs in its own child process so peak memory (RSS high-water mark minus the RSS
after data and model are built; on GPU `torch.cuda.max_memory_allocated`) is not inherited from
the others. Methods are interleaved over `--rounds` and the median epoch is reported, so a load
change on a shared machine hits every method alike.

    DATA_DIR=../shared/data python bench/explanation_cost.py --train-samples 3000 --epochs 2 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import statistics
import time
from functools import partial

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader

from retentive.data import DecoyMNIST, collate_batch
from retentive.explanations import CDEP, RRR, CAMLoss
from retentive.models import build_net, cnn_backbone
from retentive.module import ContinualModule
from retentive.strategies.naive import Naive

METHODS = {
    "vanilla": lambda: None,
    "RRR": lambda: RRR(weight=100.0),
    "CDEP": lambda: CDEP(weight=1.0),
    "CAM loss": lambda: CAMLoss(weight=1.0),
}


class EpochTimer(Callback):
    """Wall time of every training epoch."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.times.append(time.perf_counter() - self.start)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(method: str, args: argparse.Namespace, queue: mp.Queue) -> None:
    """Child process: train `args.epochs` epochs with one method, report times and peak memory."""
    torch.set_num_threads(args.threads)
    L.seed_everything(0, verbose=False)
    stream = DecoyMNIST(data_dir=args.data_dir, train_samples_per_task=args.train_samples,
                        test_samples_per_task=100, mean=0.5, std=0.5)
    net = build_net(partial(cnn_backbone, channels=[20, 50], hidden=500), stream.input_shape, stream.head_sizes, False)
    module = ContinualModule(net, Naive(), 1, partial(torch.optim.Adam, lr=1e-3), METHODS[method]())
    loader = DataLoader(stream.train(0), batch_size=args.batch_size, shuffle=True, collate_fn=collate_batch,
                        generator=torch.Generator().manual_seed(0))
    timer = EpochTimer()
    accelerator = "gpu" if torch.cuda.is_available() else "cpu"
    trainer = L.Trainer(max_epochs=args.epochs, accelerator=accelerator, devices=1, logger=False,
                        callbacks=[timer], enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0)
    baseline = _rss_bytes()
    if accelerator == "gpu":
        torch.cuda.reset_peak_memory_stats()
    trainer.fit(module, loader)
    peak = (torch.cuda.max_memory_allocated() if accelerator == "gpu"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - baseline)
    queue.put({"method": method, "epoch_s": timer.times, "peak_mib": peak / 2**20,
               "device": torch.cuda.get_device_name() if accelerator == "gpu" else f"cpu x{args.threads} threads"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("DATA_DIR", "data"))
    parser.add_argument("--train-samples", type=int, default=10000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2, help="the first is reported apart as warm-up")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3, help="methods interleaved, median epoch reported")
    parser.add_argument("--methods", nargs="*", default=list(METHODS))
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    context = mp.get_context("spawn")
    runs: dict[str, list[dict]] = {method: [] for method in args.methods}
    for _ in range(args.rounds):
        for method in args.methods:
            queue = context.Queue()
            child = context.Process(target=measure, args=(method, args, queue))
            child.start()
            runs[method].append(queue.get())
            child.join()
    # per run the best non-warm-up epoch; per method the median over rounds
    steady = {m: statistics.median(min(r["epoch_s"][1:] or r["epoch_s"]) for r in rs) for m, rs in runs.items()}
    rows = [{"method": m, "epoch_s": steady[m], "peak_mib": max(r["peak_mib"] for r in rs),
             "runs": [r["epoch_s"] for r in rs], "device": rs[0]["device"]} for m, rs in runs.items()]
    base = steady.get("vanilla", float("nan"))
    print(f"{args.train_samples} DecoyMNIST samples/epoch, batch {args.batch_size}, {rows[0]['device']}, "
          f"median of {args.rounds} interleaved rounds")
    print(f"{'method':<10} {'epoch s':>9} {'x vanilla':>10} {'peak MiB':>9}   epochs per round (s)")
    for row in rows:
        epochs = " | ".join(", ".join(f"{s:.1f}" for s in run) for run in row["runs"])
        print(f"{row['method']:<10} {row['epoch_s']:>9.1f} {row['epoch_s'] / base:>10.2f} {row['peak_mib']:>9.0f}   {epochs}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
