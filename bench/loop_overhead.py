"""Lightning + retentive callbacks vs a hand-written PyTorch loop doing the same work.

Both train one epoch of Permuted MNIST task 0 (2x400 MLP, Adam, batch 128, same batches) and then
evaluate every task's validation set (T tasks), measured alternately in one run; we report the
best of `--repeats` for each. Target: ratio <= 1.15. Usage: DATA_DIR=... python bench/loop_overhead.py
"""

from __future__ import annotations

import argparse
import time

import lightning as L
import torch
import torch.nn.functional as F

from retentive.callbacks.results import ContinualResults
from retentive.data import PermutedMNIST
from retentive.models import build_net, mlp_backbone
from retentive.module import ContinualModule
from retentive.runner import make_loader
from retentive.strategies import Naive


def make_net(stream: PermutedMNIST) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_net(mlp_backbone, stream.input_shape, stream.head_sizes, stream.multihead)


def plain_loop(stream: PermutedMNIST, batch_size: int, eval_limit: int) -> float:
    net = make_net(stream)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    train = make_loader(stream.train(0), batch_size, shuffle=True)
    vals = [make_loader(stream.val(t).subset(torch.arange(eval_limit)), 1024, False) for t in range(stream.num_tasks)]
    start = time.perf_counter()
    net.train()
    for x, y, t in train:
        optimizer.zero_grad()
        loss = F.cross_entropy(net(x, t), y)
        loss.backward()
        optimizer.step()
    net.eval()
    correct = []
    with torch.no_grad():
        for loader in vals:
            hits = total = 0
            for x, y, t in loader:
                hits += (net(x, t).argmax(1) == y).sum().item()
                total += len(y)
            correct.append(hits / total)
    return time.perf_counter() - start


def lightning_loop(stream: PermutedMNIST, batch_size: int, eval_limit: int, tmp: str) -> tuple[float, float]:
    net = make_net(stream)
    module = ContinualModule(net, Naive(), stream.num_tasks, lambda params: torch.optim.Adam(params, lr=1e-3))
    module.current_task = 0
    results = ContinualResults(tmp, stream.num_tasks, stream.task_names, {})
    trainer = L.Trainer(max_epochs=1, logger=False, callbacks=[results], enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        accelerator="cpu", devices=1)
    train = make_loader(stream.train(0), batch_size, shuffle=True)
    vals = [make_loader(stream.val(t).subset(torch.arange(eval_limit)), 1024, False) for t in range(stream.num_tasks)]
    start = time.perf_counter()
    trainer.fit(module, train, vals)
    total = time.perf_counter() - start
    return total, results.eval_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--eval-limit", type=int, default=2000, help="evaluation.max_samples_per_task")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1: stable timings)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    stream = PermutedMNIST(num_tasks=args.tasks, scenario="domain")
    print(f"Permuted MNIST, T={args.tasks}: {len(stream.train(0))} training samples in the epoch, "
          f"{args.eval_limit} validation samples per task, torch threads={torch.get_num_threads()}")
    plain, light, evals = [], [], []
    for _ in range(args.repeats):
        plain.append(plain_loop(stream, args.batch_size, args.eval_limit))
        total, eval_seconds = lightning_loop(stream, args.batch_size, args.eval_limit, "/tmp/retentive-bench")
        light.append(total)
        evals.append(eval_seconds)
    best_plain, best_light = min(plain), min(light)
    eval_share = evals[light.index(best_light)] / (best_light - evals[light.index(best_light)])
    print(f"plain PyTorch loop   : best {best_plain:.2f}s  (all: {', '.join(f'{v:.2f}' for v in plain)})")
    print(f"retentive + Lightning: best {best_light:.2f}s  (all: {', '.join(f'{v:.2f}' for v in light)})")
    print(f"ratio Lightning/plain: {best_light / best_plain:.3f}  (target <= 1.15)")
    print(f"all-task evaluation (T={args.tasks}) / training time in the epoch: {100 * eval_share:.1f}%  (target <= 20%)")


if __name__ == "__main__":
    main()
