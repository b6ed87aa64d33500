"""Per-epoch and per-task diagnostics: confusion matrices of the seen tasks, penultimate-layer
embeddings (TensorBoard projector) and t-SNE figures."""

from retentive.diagnostics.confusion import ConfusionMatrices, label_layout
from retentive.diagnostics.embeddings import EmbeddingProjector, embed, tsne_2d

__all__ = ["ConfusionMatrices", "EmbeddingProjector", "embed", "label_layout", "tsne_2d"]
