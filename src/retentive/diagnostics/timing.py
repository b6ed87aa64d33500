"""What the diagnostics cost, recorded in results.json next to the run's own timings."""

from __future__ import annotations

from collections.abc import Callable

import lightning as L

from retentive.callbacks.results import ContinualResults


def report_seconds(trainer: L.Trainer, name: str, seconds: Callable[[], float]) -> None:
    """Adds `<name>_seconds` to results.json (the run's ContinualResults, if it has one), so the
    price of a diagnostic can be read against `seconds` and `eval_seconds` of the same run."""
    results = next((cb for cb in trainer.callbacks if isinstance(cb, ContinualResults)), None)
    if results is not None:
        results.add_section(name, lambda: {f"{name}_seconds": round(seconds(), 2)})
