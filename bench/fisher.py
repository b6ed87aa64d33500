"""Exact per-sample Fisher (vectorised hooks) vs a per-sample loop vs one plain batched backward.

    python bench/fisher.py [--examples 256] [--repeats 3] [--threads 1]

For an MLP (2x400, MNIST input) and a CNN (conv 20/50 + fc 500, MNIST input), with a 10-way and a
2-way head (Split MNIST's), on the same examples:
  * loop:       one forward per sample and one backward per class (what most CL code does),
  * vectorised: `retentive.strategies.fisher.fisher_sums(kind="exact")`,
  * backward:   one forward + backward of the mean loss over the same examples (the floor).
Checks the vectorised values against the loop (max relative error per tensor), then prints a
markdown table of median wall-clock times. `empirical` (one label per example) is timed too.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from retentive.models import ContinualNet, cnn_backbone, mlp_backbone
from retentive.strategies.fisher import fisher_sums


def loop_fisher(net: ContinualNet, params: dict, x: torch.Tensor, t: torch.Tensor) -> dict[str, torch.Tensor]:
    totals = {n: torch.zeros_like(p) for n, p in params.items()}
    for i in range(len(x)):
        log_probs = F.log_softmax(net(x[i : i + 1], t[i : i + 1]), dim=1)[0]
        probs = log_probs.detach().exp()
        for c in range(len(log_probs)):
            grads = torch.autograd.grad(log_probs[c], list(params.values()), retain_graph=c + 1 < len(log_probs))
            for (name, _), g in zip(params.items(), grads, strict=True):
                totals[name] += probs[c] * g.square()
    return totals


def plain_backward(net: ContinualNet, params: dict, x: torch.Tensor, y: torch.Tensor, t: torch.Tensor,
                   batch: int) -> None:
    for start in range(0, len(x), batch):
        loss = F.cross_entropy(net(x[start : start + batch], t[start : start + batch]), y[start : start + batch])
        torch.autograd.grad(loss, list(params.values()))


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=256)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--classes", type=int, nargs="*", default=[10, 2], help="head sizes to time")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.rand(args.examples, 1, 28, 28)
    t = torch.zeros(args.examples, dtype=torch.long)
    print(f"{args.examples} examples, batch {args.batch}, {args.threads} thread(s), torch {torch.__version__}")
    print("| model | classes | #params | loop (s) | vectorised exact (s) | vectorised empirical (s) | plain backward (s) "
          "| loop / exact | exact / backward | max rel. error |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for classes in args.classes:
        y = torch.randint(0, classes, (args.examples,))
        for name, builder in {"MLP 2x400": mlp_backbone, "CNN 20/50/500": cnn_backbone}.items():
            torch.manual_seed(0)
            body, width = builder((1, 28, 28))
            net = ContinualNet(body, width, [classes], False).eval()
            row(name, classes, net, x, y, t, args)


def row(name: str, classes: int, net: ContinualNet, x: torch.Tensor, y: torch.Tensor, t: torch.Tensor,
    args: argparse.Namespace) -> None:
    """Time the three ways on one model and print a table row."""
    params = dict(net.named_parameters())
    batches = [(x[s : s + args.batch], y[s : s + args.batch], t[s : s + args.batch])
               for s in range(0, args.examples, args.batch)]
    loop_s, reference = timed(lambda net=net, params=params: loop_fisher(net, params, x, t), 1)
    exact_s, (fast, _) = timed(lambda net=net, params=params, b=batches: fisher_sums(net, params, b, "exact"),
                               args.repeats)
    emp_s, _ = timed(lambda net=net, params=params, b=batches: fisher_sums(net, params, b, "empirical"),
                     args.repeats)
    back_s, _ = timed(lambda net=net, params=params: plain_backward(net, params, x, y, t, args.batch),
                      args.repeats)
    error = max(((fast[n] - reference[n]).abs().max() / reference[n].abs().max()).item() for n in params)
    count = sum(p.numel() for p in params.values())
    print(f"| {name} | {classes} | {count:,} | {loop_s:.3f} | {exact_s:.4f} | {emp_s:.4f} | {back_s:.4f} "
          f"| {loop_s / exact_s:.0f}x | {exact_s / back_s:.2f}x | {error:.1e} |")


if __name__ == "__main__":
    main()
