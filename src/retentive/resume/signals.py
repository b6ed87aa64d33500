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


def _raise(signum: int, frame: object) -> None:
    name = signal.Signals(signum).name
    signal.signal(signum, signal.SIG_IGN)  # a second signal while shutting down is ignored
    raise RunInterrupted(name)


@contextmanager
def interrupt_on_signals() -> Iterator[None]:
    """Turn SIGTERM/SIGINT into `RunInterrupted` inside the block (main thread only)."""
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
