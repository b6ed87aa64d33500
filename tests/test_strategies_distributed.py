"""Under torch.distributed, N processes give the Ω that one process gives over the same examples."""

from __future__ import annotations

import socket
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DataLoader, TensorDataset

from retentive.data import SplitDigits
from retentive.models import ContinualNet, cnn_backbone
from retentive.strategies import EWC, MAS
from retentive.strategies.distributed import local_batches

#: uneven shards on purpose: the mean must be over all examples, not a mean of per-rank means
SHARDS = ((0, 70), (70, 110))
WORLD = len(SHARDS)


def _net() -> ContinualNet:
    torch.manual_seed(0)
    body, width = cnn_backbone((1, 8, 8), (4, 6), 3, 16)
    return ContinualNet(body, width, [2, 2], True)


def _data() -> tuple[torch.Tensor, ...]:
    stream = SplitDigits(scenario="task", seed=0)
    first = tuple(stream.train(0).batch(range(60)))
    second = tuple(stream.train(1).batch(range(50)))
    return tuple(torch.cat(pair) for pair in zip(first, second, strict=True))


def _importances(rows: slice, as_loader: bool = False) -> dict[str, dict[str, torch.Tensor]]:
    """Ω over the examples in `rows`; `as_loader`: a DataLoader every rank iterates in full."""
    x, y, t = (part[rows] for part in _data())
    batches = [(x[i : i + 16], y[i : i + 16], t[i : i + 16]) for i in range(0, len(x), 16)]
    if as_loader:
        batches = DataLoader(TensorDataset(x, y, t), batch_size=16)
    net, out = _net(), {}
    for name, strategy in {"ewc_exact": EWC(fisher="exact", include_heads=True),
                           "ewc_empirical": EWC(fisher="empirical", include_heads=True),
                           "mas": MAS(include_heads=True)}.items():
        out[name] = strategy.compute_importance(net, 0, batches, strategy.protected(net))
    return out


def _worker(rank: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        torch.save(_importances(slice(*SHARDS[rank])), Path(out_dir) / f"rank{rank}.pt")
        # the runner's task-end loader is the full task on every rank: each takes every other batch
        torch.save(_importances(slice(0, SHARDS[-1][1]), as_loader=True), Path(out_dir) / f"loader{rank}.pt")
        batches = list(local_batches(DataLoader(TensorDataset(torch.arange(110)), batch_size=16)))
        torch.save([int(b[0][0]) for b in batches], Path(out_dir) / f"firsts{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_gloo_processes_match_one_process(tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = _importances(slice(0, SHARDS[-1][1]))
        mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    finally:
        torch.set_num_threads(threads)
    per_rank = [torch.load(tmp_path / f"{kind}{r}.pt") for kind in ("rank", "loader") for r in range(WORLD)]
    # 7 batches of the full loader: rank 0 takes batches 0, 2, 4, 6 and rank 1 takes 1, 3, 5
    assert torch.load(tmp_path / "firsts0.pt") == [0, 32, 64, 96]
    assert torch.load(tmp_path / "firsts1.pt") == [16, 48, 80]
    shard_only = _importances(slice(*SHARDS[0]))
    for method, omega in single.items():
        for name, expected in omega.items():
            for result in per_rank:  # every rank ends with the global Ω, sharded by hand or by loader
                torch.testing.assert_close(result[method][name], expected, rtol=1e-5, atol=1e-9)
        # and it is not what one shard alone would give (the reduction really happened)
        assert any(not torch.allclose(shard_only[method][n], omega[n], rtol=1e-3) for n in omega), method

