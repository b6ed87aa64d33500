"""Sending figures and tables to whichever Lightning loggers a run has (TensorBoard, W&B)."""

from retentive.loggers.media import log_image, log_table

__all__ = ["log_image", "log_table"]
