"""Sending figures, tables and embeddings to whichever Lightning loggers a run has (TensorBoard, W&B)."""

from retentive.loggers.media import log_embedding, log_image, log_table

__all__ = ["log_embedding", "log_image", "log_table"]
