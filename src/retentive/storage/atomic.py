"""Atomic file writes: a reader (or a kill) sees the old file or the new one, never a partial one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from retentive.resume.signals import deferred_signals


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Write through `write(handle)` into a temp file in the same directory, fsync, then rename
    (SIGTERM/SIGINT arriving meanwhile take effect once the file is in place)."""
    with deferred_signals():
        return _atomic_write(path, write)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a plain open() would honour the umask
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda handle: handle.write(text.encode()))


def atomic_torch_save(path: str | Path, obj: Any) -> Path:
    import torch  # here, not at the top: text writers (reports, tabulate) start without torch

    return atomic_write(path, lambda handle: torch.save(obj, handle))
