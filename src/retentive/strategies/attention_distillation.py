"""Attention distillation: Learning without Memorizing (Dhar et al., CVPR 2019, "LwM").

LwF keeps the old model's *outputs* on the current data; LwM also keeps *where it looks*: the
GradCAM map of the frozen previous model (the teacher) and of the current net, both for the class
the teacher ranks first among the old classes, should agree after L2-normalisation:

    L_AD = mean_n ‖ Q_s(x_n)/‖Q_s(x_n)‖₂ − Q_t(x_n)/‖Q_t(x_n)‖₂ ‖₁        (Q: vectorised GradCAM)

added to LwF's distillation: loss += `weight_attention` · L_AD + LwF's term.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from retentive.data.batch import Batch
from retentive.errors import ConfigError
from retentive.strategies.base import device_of
from retentive.strategies.lwf import LwF
from retentive.strategies.saliency_replay import conv_layer, eval_mode, layer_cam


def attention_distance(student: Tensor, teacher: Tensor) -> Tensor:
    """Batch mean of the L1 distance between the L2-normalised, vectorised maps (0 when they agree)."""
    student = F.normalize(student.flatten(1), p=2, dim=1, eps=1e-12)
    teacher = F.normalize(teacher.flatten(1), p=2, dim=1, eps=1e-12)
    return (student - teacher).abs().sum(1).mean()


class AttentionDistillation(LwF):
    """LwF + `weight_attention` · L_AD on the current batch (tasks > 0; GradCAM needs a conv layer).

    The explained class is the teacher's top-1 over the old classes: in Class-/Domain-IL over the
    output units of the classes seen in earlier tasks; in Task-IL over every earlier head's outputs
    together (the sample is then routed to that head in both nets). GradCAM is read at
    `gradcam_layer` (a Conv2d's name; null: the last conv, as LwM) at the layer's resolution, in
    eval mode; the teacher's map is a constant target, the net's is differentiated through.
    """

    needs = ("conv",)

    def __init__(self, alpha: float = 1.0, temperature: float = 2.0, weight_attention: float = 0.1,
                 gradcam_layer: str | None = None) -> None:
        super().__init__(alpha, temperature)
        if not isinstance(weight_attention, int | float) or not weight_attention >= 0:
            raise ConfigError("strategy.weight_attention", f"must be a number >= 0, got {weight_attention!r}",
                              "the weight of the attention distillation term")
        if gradcam_layer is not None and not isinstance(gradcam_layer, str):
            raise ConfigError("strategy.gradcam_layer", f"must be a Conv2d's name or null, got {gradcam_layer!r}")
        self.weight_attention = float(weight_attention)
        self.gradcam_layer = gradcam_layer

    def setup(self, net: nn.Module) -> None:
        super().setup(net)
        conv_layer(net, self.gradcam_layer)  # a ConfigError before training if it is missing

    def loss(self, net: nn.Module, batch: Batch, logits: Tensor) -> Tensor:
        total = super().loss(net, batch, logits)
        if not self.teacher or self.weight_attention == 0:
            return total
        return total + self.weight_attention * self.attention_loss(net, batch)

    def old_top1(self, batch: Batch, multihead: bool) -> tuple[Tensor, Tensor | None]:
        """(class, head) per sample: the teacher's highest-scoring old class (head None: one shared head)."""
        x = batch.x
        if multihead:
            features = self.teacher.features(x)
            scores = torch.cat([self.teacher.head_logits(features, torch.full_like(batch.t, j))
                                for j in range(self.task)], dim=1)  # -inf padding never wins
            width = scores.shape[1] // self.task
            best = scores.argmax(1)
            return best % width, best // width
        units = torch.tensor(sorted(self.seen_classes), device=x.device)
        return units[self.teacher(x, batch.t)[:, units].argmax(1)], None

    def attention_loss(self, net: nn.Module, batch: Batch) -> Tensor:
        """L_AD on `batch` (0 before the first teacher)."""
        if not self.teacher:
            return torch.zeros((), device=device_of(net))
        target, head = self.old_top1(batch, getattr(net, "multihead", False))
        teacher = self.teacher.net  # on x's device: old_top1 called the teacher
        old = layer_cam(teacher, self.gradcam_layer, batch.x, target, head, create_graph=False).detach()
        with eval_mode(net):
            now = layer_cam(net, self.gradcam_layer, batch.x, target, head, create_graph=True)
        return attention_distance(now, old)

    # state: LwF's (teacher weights, classes seen, task); the options come from the config
