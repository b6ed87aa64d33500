"""Quiet, single logs: Lightning's own console handler removed (Hydra's root handlers print every
line once, to the console and train.log) and its per-task boilerplate dropped."""

from __future__ import annotations

import logging
import warnings

#: Lightning lines repeated at every task's fit that tell a continual run nothing
NOISE = ("litlogger", "`Trainer.fit` stopped", "was configured so validation will run", "You are using a CUDA device")
LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric", "lightning_fabric", "pytorch_lightning")


class DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(text in message for text in NOISE)


def quiet_lightning() -> None:
    """Call once logging is configured (inside the Hydra main): every Lightning record goes through the
    root handlers once, minus the noise; warnings and info only from rank 0 (Lightning's rank_zero)."""
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = [h for h in logger.handlers if isinstance(h, logging.FileHandler)]
        logger.propagate = True
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(DropNoise())
    logging.getLogger("lightning.fabric.utilities.rank_zero").addFilter(DropNoise())


#: known, harmless warnings from Lightning/torch that would bury the per-epoch lines
KNOWN_WARNINGS = (".*LeafSpec.*", ".*smaller than the logging interval.*", ".*does not have many workers.*",
                  ".*litlogger.*", ".*is deprecated.*")


def silence_known_warnings() -> None:
    for pattern in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
