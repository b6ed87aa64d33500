"""A-GEM: Averaged Gradient Episodic Memory (Chaudhry et al. 2019, ICLR, "Efficient Lifelong
Learning with A-GEM").

An episodic memory of earlier tasks' samples; at every step the gradient g of the current batch is
compared with the gradient g_ref of the loss on a batch drawn from the memory, and when a step
along g would (to first order) increase that loss, g is projected onto the half-space where it does
not: g ← g − (g·g_ref / g_ref·g_ref) g_ref, over all trainable parameters flattened into one vector.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from retentive.data.batch import Batch
from retentive.errors import ConfigError
from retentive.strategies.base import Strategy
from retentive.strategies.buffer import ReservoirBuffer


class AGEM(Strategy):
    """Projects the step's gradient in `on_after_backward`; adds no loss.

    The memory holds only *finished* tasks, as in the paper (whose memory of a task becomes usable
    when the task ends): at each task end the task's whole training set is offered, in order, to a
    reservoir buffer of `buffer_size` samples in total (`strategies/buffer.py`; as mammoth's
    `agem.py`, which fills its buffer in `end_task`). Reservoir sampling over the concatenated
    tasks keeps a uniform sample of everything finished, so each task holds a share proportional
    to its size (equal for Split MNIST) without knowing the number of tasks;
    `buffer_mode=class_balanced` keeps classes equal instead (closer to the paper's per-class ring
    buffers). Task 0 trains as plain fine-tuning (empty memory). `task_end_samples=n` instead stores
    n random samples of each finished task (mammoth's seq-mnist protocol: buffer_size // n_tasks,
    the first batch of a shuffled loader), leaving older tasks' samples in place while there is room.

    g_ref is `torch.autograd.grad` of the mean cross-entropy on `memory_batch_size` memory samples
    (256, the authors' `EPS_MEM_BATCH_SIZE`), at the current parameters; the step's `.grad` are
    only touched by the projection. Under DDP every process iterates the full task-end loader with
    the same seed, so every process holds the same memory, draws the same batch and applies the
    same projection to the (already averaged) gradient.
    """

    def __init__(self, buffer_size: int = 200, memory_batch_size: int = 256, buffer_mode: str = "reservoir",
                 seed: int = 0, task_end_samples: int | None = None) -> None:
        if task_end_samples is not None and (isinstance(task_end_samples, bool) or not isinstance(
                task_end_samples, int) or not 1 <= task_end_samples <= buffer_size):
            raise ConfigError("strategy.task_end_samples", f"must be null or an integer in 1..buffer_size "
                              f"({buffer_size}), got {task_end_samples!r}", "buffer_size // number of tasks (mammoth)")
        if isinstance(memory_batch_size, bool) or not isinstance(memory_batch_size, int) or memory_batch_size < 1:
            raise ConfigError("strategy.memory_batch_size", f"must be an integer >= 1, got {memory_batch_size!r}",
                              "256 as in Chaudhry et al. 2019")
        self.buffer = ReservoirBuffer(buffer_size, seed, buffer_mode)
        self.memory_batch_size = memory_batch_size
        self.task_end_samples = task_end_samples
        self.steps = 0  # steps with a non-empty memory
        self.projections = 0  # of which the gradient was projected (g·g_ref < 0)

    def reference_gradient(self, net: nn.Module, params: list[nn.Parameter]) -> list[Tensor]:
        """∂ CE(net(x_m, t_m), y_m) / ∂θ on a memory batch, one tensor per parameter (zeros where unused)."""
        device = params[0].device
        memory = self.buffer.sample(self.memory_batch_size).to(device)
        with torch.enable_grad():
            loss = F.cross_entropy(net(memory.x, memory.t), memory.y)
            grads = torch.autograd.grad(loss, params, allow_unused=True)
        return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]

    def on_after_backward(self, net: nn.Module, batch: Batch) -> None:
        if len(self.buffer) == 0:
            return
        params = [p for p in net.parameters() if p.requires_grad]
        if not params:
            return
        reference = self.reference_gradient(net, params)
        self.steps += 1
        self.projections += project(params, reference)

    def on_task_end(self, net: nn.Module, task_id: int, batches: Iterable[Batch]) -> None:
        if self.task_end_samples is not None:  # n random samples of this task (same draw on every process)
            task = Batch.cat([Batch.of(batch) for batch in batches])
            rows = torch.randperm(len(task), generator=self.buffer.generator)[: self.task_end_samples]
            self.buffer.add(task.select(rows))
            return
        for batch in batches:  # every process the whole loader (not local_batches): identical memories
            self.buffer.add(Batch.of(batch))

    def state_dict(self) -> dict:
        return {"buffer": self.buffer.state_dict(), "steps": self.steps, "projections": self.projections}

    def load_state_dict(self, state: dict) -> None:
        self.buffer.load_state_dict(state["buffer"])
        self.steps, self.projections = int(state["steps"]), int(state["projections"])


def project(params: list[nn.Parameter], reference: list[Tensor]) -> bool:
    """In place: p.grad ← g − (g·r / r·r) r if g·r < 0 (g, r flattened over `params`; a missing
    `.grad` is g = 0 there). Returns whether it projected; g is left as it is otherwise."""
    dot = sum((p.grad * r).sum() for p, r in zip(params, reference, strict=True) if p.grad is not None)
    norm = sum(r.pow(2).sum() for r in reference)
    if not torch.is_tensor(dot) or not bool(dot < 0) or not bool(norm > 0):  # one sync per step, as the authors'
        return False
    scale = dot / norm
    for p, r in zip(params, reference, strict=True):
        if p.grad is None:
            if r.any():  # an unused parameter (another task's head) gets the −scale·r component
                p.grad = -scale * r
        else:
            p.grad.sub_(scale * r)
    return True
