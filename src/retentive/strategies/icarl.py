"""iCaRL: incremental Classifier and Representation Learning (Rebuffi et al. 2017, CVPR).

A fixed memory of K exemplars, split evenly over the classes seen so far (m = K // #classes), chosen
by herding on L2-normalised backbone features; training on the task's data plus every exemplar with
a sigmoid (binary cross-entropy) loss whose targets are one-hot on the new classes and the previous
model's sigmoid outputs on the old ones (distillation); classification by the nearest mean of
exemplars (NME) in feature space, not by the network's head. Class-IL only (one shared head).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from retentive.data.batch import Batch
from retentive.data.stream import TaskStream
from retentive.data.task_dataset import TaskDataset
from retentive.errors import ConfigError, require, weight_value
from retentive.strategies.base import Strategy, device_of
from retentive.strategies.herding import herding
from retentive.strategies.teacher import Teacher

CHUNK = 1024  # samples per forward pass when embedding a task's data or the memory


class ICaRL(Strategy):
    """Exemplar memory + BCE distillation + nearest-mean-of-exemplars classification.

    Protocol (hooks in the runner's order), for task t:

    - `train_dataset`: the task's training data concatenated with every exemplar kept so far (one
      `TaskDataset`, uint8 images, shuffled together), as in the paper's Algorithm 3.
    - `on_task_start` (t > 0): the teacher (the net as it is now) is frozen.
    - `loss`, added to the module's cross-entropy on the same batch: `bce_weight` ·
      BCE-with-logits over the units of the classes seen so far (old and new), targets one-hot for
      the new classes' units and sigmoid(teacher logits / `temperature`) for the old ones, mean over
      samples × units (mammoth's `models/icarl.py`). The paper's loss is the BCE alone
      (`ce_weight=0`, also mammoth's and van de Ven's); by default the module's CE is kept
      (`ce_weight=1`: CE + BCE), which trains the head the NME does not use more stably.
    - `eval_logits`: −‖φ(x) − μ_y‖ for each class y with exemplars (φ: L2-normalised
      `net.features`, μ_y: the re-normalised mean of its exemplars' φ; both raw with
      `normalize=False`, as mammoth), −inf for the others.
      The runner tests before `on_task_end` (and never calls it after the last task), so the
      first evaluation after a training step re-selects the current task's exemplars with the
      current net (herding on the whole task, recorded in `train_dataset`), shrinks the old sets
      to their first m, and recomputes every class mean: what the paper does right after training.
    - `on_task_end`: commits that selection (or herds again on the given loader's data when no
      evaluation happened since the last step) into the memory; old classes keep their first m.
    """

    def __init__(self, buffer_size: int = 2000, bce_weight: float = 1.0, ce_weight: float = 1.0,
                 normalize: bool = True, temperature: float = 1.0) -> None:
        if isinstance(buffer_size, bool) or not isinstance(buffer_size, int) or buffer_size < 1:
            raise ConfigError("strategy.buffer_size", f"must be an integer >= 1, got {buffer_size!r}",
                              "the total number of exemplars K over all classes (2000 in Rebuffi et al.)")
        self.buffer_size = buffer_size
        self.bce_weight = weight_value("strategy.bce_weight", bce_weight, "iCaRL's sigmoid classification + distillation")
        self.task_loss_weight = weight_value("strategy.ce_weight", ce_weight, "the module's CE (0: the paper's BCE only)")
        require(self.bce_weight > 0 or self.task_loss_weight > 0, "strategy.ce_weight", "ce_weight=0 with "
                "bce_weight=0 leaves no loss to train on", "the paper: ce_weight=0, bce_weight=1")
        require(isinstance(normalize, bool), "strategy.normalize", f"must be true or false, got {normalize!r}",
                "true: herding and class means on L2-normalised features (the paper); false: raw")
        self.normalize = normalize
        require(weight_value("strategy.temperature", temperature) > 0, "strategy.temperature",
                f"must be a number > 0, got {temperature!r}", "1: sigmoid(teacher logits), mammoth; 2: van de Ven's")
        self.temperature = float(temperature)
        self.teacher = Teacher()
        self.num_outputs = 0
        # state (state_dict): committed exemplars, rows grouped by class, each class in herding order
        self.memory: TaskDataset | None = None
        self.means: Tensor | None = None  # [C, d] re-normalised exemplar means (CPU)
        self.mean_classes: Tensor | None = None  # [C] the class of each row of `means`
        self.pending: dict | None = None  # {"task", "positions"}: the current task's latest selection
        self.stale = False  # a training step happened since the means were computed
        # per task, rebuilt by train_dataset (also on resume): not state
        self._current: TaskDataset | None = None
        self._current_task = -1
        self._new_classes: Tensor | None = None
        self._device_means: tuple[Tensor, Tensor] | None = None

    # -- hooks ------------------------------------------------------------------------------
    def setup(self, net: nn.Module) -> None:
        if getattr(net, "multihead", False):
            raise ConfigError("dataset.scenario", "iCaRL classifies by the nearest mean of exemplars over all "
                              "classes seen, which needs one shared head, not a multi-head (Task-IL) net",
                              "use dataset.scenario=class (and model.heads=auto)")
        self.num_outputs = max(head.out_features for head in net.heads)
        if self.buffer_size < self.num_outputs:
            raise ConfigError("strategy.buffer_size", f"{self.buffer_size} exemplars cannot hold one per class "
                              f"({self.num_outputs} classes)", f"use at least {self.num_outputs}")
        self.teacher.bind(net)

    def train_dataset(self, task_id: int, stream: TaskStream) -> TaskDataset:
        if stream.scenario != "class":
            raise ConfigError("dataset.scenario", f"iCaRL needs Class-IL (every class in one task), got "
                              f"'{stream.scenario}'", "use dataset.scenario=class")
        data = stream.train(task_id)
        new = torch.unique(data.labels)
        if bool(torch.isin(new, self._memory_classes()).any()):
            raise ConfigError("dataset.scenario", f"task {task_id} repeats classes that already have exemplars",
                              "iCaRL needs tasks with disjoint classes (Class-IL)")
        self._current, self._current_task, self._new_classes = data, task_id, new
        if self.memory is None:
            return data
        return TaskDataset.concat([data, self.memory])

    def on_task_start(self, net: nn.Module, task_id: int) -> None:
        if self.memory is not None:
            self.teacher.snapshot(net)
        self.pending = None
        self.stale = True  # the means do not cover this task's classes yet

    def loss(self, net: nn.Module, batch: Batch, logits: Tensor) -> Tensor:
        if self.bce_weight == 0:
            return torch.zeros((), device=device_of(net))
        if self._new_classes is None:
            raise RuntimeError("ICaRL.loss needs train_dataset(task, stream) first (the task's classes)")
        old = self._memory_classes().to(logits.device)
        units = torch.cat([old, self._new_classes.to(logits.device)]).sort().values
        targets = F.one_hot(batch.y, logits.shape[1]).to(logits.dtype)
        if len(old) and self.teacher:
            targets[:, old] = torch.sigmoid(self.teacher(batch.x, batch.t)[:, old] / self.temperature).to(logits.dtype)
        return self.bce_weight * F.binary_cross_entropy_with_logits(logits[:, units], targets[:, units])

    def on_train_batch_end(self, net: nn.Module, batch: Batch, logits: Tensor) -> None:
        self.stale = True

    def on_task_end(self, net: nn.Module, task_id: int, batches: Iterable[Batch]) -> None:
        data = self._task_data(task_id)
        m = self._per_class()
        if self.stale or self.pending is None or self.pending["task"] != task_id:
            features, labels, index = self._embed(net, batches)
            positions = _rows_of(data, index)[self._select(features, labels, m)]
        else:  # the selection the task's last evaluation made with this very net
            positions = self.pending["positions"]
        kept, chosen = self._shrunk_memory(m), data.subset(positions)
        self.memory = chosen if kept is None else TaskDataset.concat([kept, chosen])
        self.pending = None
        features, labels, _ = self._embed(net, _chunks(self.memory))
        self._set_means(features, labels)
        self.stale = False

    def eval_logits(self, net: nn.Module, batch: Batch) -> Tensor:
        if self.stale and self._current is not None:
            self._refresh(net)
        if self.means is None:  # nothing learnt yet (the random-init reference test)
            return net(batch.x, batch.t)
        features = self._phi(net, batch.x)
        means, classes = self._means_on(features.device, features.dtype)
        distance = torch.cdist(features, means, compute_mode="donot_use_mm_for_euclid_dist")
        scores = features.new_full((len(features), self.num_outputs), float("-inf"))
        scores[:, classes] = -distance
        return scores

    # -- exemplars and means --------------------------------------------------------------
    def _memory_classes(self) -> Tensor:
        return torch.zeros(0, dtype=torch.long) if self.memory is None else torch.unique(self.memory.labels)

    def _per_class(self) -> int:
        """m = K // (classes with exemplars + the current task's classes)."""
        if self._new_classes is None:
            raise RuntimeError("ICaRL needs train_dataset(task, stream) before selecting exemplars")
        return self.buffer_size // (len(self._memory_classes()) + len(self._new_classes))

    def _task_data(self, task_id: int) -> TaskDataset:
        if self._current is None or self._current_task != task_id:
            raise RuntimeError(f"ICaRL needs train_dataset({task_id}, stream) before task {task_id}'s end")
        return self._current

    def _select(self, features: Tensor, labels: Tensor, m: int) -> Tensor:
        """Rows of the current task's first m exemplars per class (herding), class by class."""
        parts = []
        for c in self._new_classes.tolist():
            rows = (labels == c).nonzero().squeeze(1)
            parts.append(rows[herding(features[rows], m)])
        return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)

    def _shrunk_memory(self, m: int) -> TaskDataset | None:
        """The committed exemplars with each old class cut to its first m (its herding order)."""
        if self.memory is None:
            return None
        labels = self.memory.labels
        rows = torch.cat([(labels == c).nonzero().squeeze(1)[:m] for c in torch.unique(labels).tolist()])
        return self.memory.subset(rows)

    def _refresh(self, net: nn.Module) -> None:
        """Exemplars of the current task chosen with the current net, old sets shrunk, all means."""
        with torch.inference_mode(False):  # evaluation runs in inference mode: keep normal tensors
            data = self._current
            features, labels, _ = self._embed(net, _chunks(data))
            m = self._per_class()
            positions = self._select(features, labels, m)
            kept = self._shrunk_memory(m)
            if kept is not None:
                old_features, old_labels, _ = self._embed(net, _chunks(kept))
                features = torch.cat([old_features, features[positions]])
                labels = torch.cat([old_labels, labels[positions]])
            else:
                features, labels = features[positions], labels[positions]
            self._set_means(features, labels)
            self.pending = {"task": self._current_task, "positions": positions}
            self.stale = False

    def _phi(self, net: nn.Module, x: Tensor) -> Tensor:
        """φ(x): the backbone's features, L2-normalised unless `normalize=False` (mammoth's variant)."""
        features = net.features(x).flatten(1)
        return F.normalize(features, dim=1) if self.normalize else features

    @torch.no_grad()
    def _embed(self, net: nn.Module, batches: Iterable[Batch]) -> tuple[Tensor, Tensor, Tensor | None]:
        """φ of the batches (CPU, float32), labels and sample ids, in the batches' order (eval mode)."""
        device, training = device_of(net), net.training
        net.eval()
        features, labels, index = [], [], []
        try:
            for batch in batches:
                batch = Batch.of(batch)
                features.append(self._phi(net, batch.x.to(device)).float().cpu())
                labels.append(batch.y.cpu())
                index.append(None if batch.index is None else batch.index.cpu())
        finally:
            net.train(training)
        ids = None if any(i is None for i in index) else torch.cat(index)
        return torch.cat(features), torch.cat(labels), ids

    def _set_means(self, features: Tensor, labels: Tensor) -> None:
        classes = torch.unique(labels)
        means = torch.stack([features[labels == c].double().mean(0) for c in classes.tolist()])
        # "averages are also re-normalised" (Sec. 2.1); mammoth keeps raw features and raw means
        self.means = (F.normalize(means, dim=1) if self.normalize else means).float()
        self.mean_classes = classes
        self._device_means = None

    def _means_on(self, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        cached = self._device_means
        if cached is None or cached[0].device != device or cached[0].dtype != dtype:
            cached = (self.means.to(device, dtype), self.mean_classes.to(device))
            self._device_means = cached
        return cached

    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        memory = None
        if self.memory is not None:
            mem = self.memory
            memory = {"images": mem.images.clone(), "labels": mem.labels.clone(), "task_ids": mem.task_ids.clone(),
                      "sample_ids": mem.sample_ids.clone(),
                      "masks": None if mem.masks is None else mem.masks.clone(),
                      "mean": mem.mean, "std": mem.std}
        return {
            "buffer_size": self.buffer_size,
            "memory": memory,
            "means": None if self.means is None else self.means.clone(),
            "mean_classes": None if self.mean_classes is None else self.mean_classes.clone(),
            "pending": None if self.pending is None else {"task": int(self.pending["task"]),
                                                          "positions": self.pending["positions"].clone()},
            "stale": self.stale,
            "teacher": self.teacher.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        if state["buffer_size"] != self.buffer_size:
            raise ConfigError("strategy.buffer_size", f"the checkpoint's memory holds {state['buffer_size']} "
                              f"exemplars, this run's {self.buffer_size}", "resume with the run's own buffer_size")
        memory = state["memory"]
        self.memory = None if memory is None else TaskDataset(
            memory["images"], memory["labels"], memory["task_ids"], memory["masks"], memory["mean"], memory["std"],
            memory["sample_ids"])
        self.means, self.mean_classes = state["means"], state["mean_classes"]
        self._device_means = None
        pending = state["pending"]
        self.pending = None if pending is None else {"task": int(pending["task"]), "positions": pending["positions"]}
        self.stale = bool(state["stale"])
        self.teacher.load_state_dict(state["teacher"])


def _chunks(data: TaskDataset) -> Iterator[Batch]:
    for start in range(0, len(data), CHUNK):
        yield data.batch(torch.arange(start, min(start + CHUNK, len(data))))


def _rows_of(data: TaskDataset, index: Tensor | None) -> Tensor:
    """Rows of `data` holding the samples whose ids are `index` (in order when there are none)."""
    if index is None:
        return torch.arange(len(data))
    order = torch.argsort(data.sample_ids)
    found = order[torch.searchsorted(data.sample_ids[order], index).clamp(max=len(data) - 1)]
    if not torch.equal(data.sample_ids[found], index):
        raise RuntimeError("ICaRL.on_task_end got samples that are not in the task's training data")
    return found
