"""Continual-learning metrics in torchmetrics style: the accuracy matrix and the explanation drift matrix."""

from retentive.metrics.accuracy_matrix import AccuracyMatrix
from retentive.metrics.explanation_drift import (
    ExplanationDriftMatrix,
    spearman_similarity,
    topk_overlap,
)

__all__ = ["AccuracyMatrix", "ExplanationDriftMatrix", "spearman_similarity", "topk_overlap"]
