"""SIGTERM (SLURM, `timeout`, `kill`) and SIGINT (Ctrl-C) stop a run with a named status."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

EXIT_CODES = {"SIGTERM": 128 + signal.SIGTERM, "SIGINT": 128 + signal.SIGINT}  # 143, 130


class RunInterrupted(BaseException):
    """Raised in the main thread when the run receives SIGTERM or SIGINT.

    A BaseException (like KeyboardInterrupt) so no `except Exception` on the way swallows it;
    Lightning tears down and re-raises it, the runner records the status and the entry point
    exits with 128 + the signal number.
    """

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.signal_name = name

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.signal_name]


_deferring = 0  # depth of `deferred_signals` blocks being run
_pending: str | None = None  # a signal that arrived inside one


def _raise(signum: int, frame: object) -> None:
    global _pending
    name = signal.Signals(signum).name
    signal.signal(signum, signal.SIG_IGN)  # a second signal while shutting down is ignored
    if _deferring:
        _pending = name
        return
    raise RunInterrupted(name)


@contextmanager
def deferred_signals() -> Iterator[None]:
    """A signal inside the block is raised when the block ends, not in the middle of it.

    For writes: an exception raised inside `torch.save`'s C++ zip writer comes out as an unrelated
    RuntimeError ("unexpected pos ..."), losing the signal and the status; the temp file would be
    left half-written. Deferring costs at most one checkpoint write's time.
    """
    global _deferring, _pending
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
    if not _deferring and _pending is not None:
        name, _pending = _pending, None
        raise RunInterrupted(name)


@contextmanager
def interrupt_on_signals() -> Iterator[None]:
    """Turn SIGTERM/SIGINT into `RunInterrupted` inside the block (main thread only)."""
    global _pending
    _pending = None
    try:
        previous = {sig: signal.signal(sig, _raise) for sig in (signal.SIGTERM, signal.SIGINT)}
    except ValueError:  # not the main thread (e.g. a notebook worker): leave signals alone
        yield
        return
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
