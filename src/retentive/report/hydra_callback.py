"""Hydra callback (registered in conf/hydra/default.yaml) keeping `<sweep dir>/report.html` up to
date: refreshed after every job, so a sweep that stops early (a failed job ends a Hydra multirun)
still has its table, and written in full when the multirun ends."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

log = logging.getLogger("retentive")


class MultirunReport(Callback):
    """The multirun's report.html: the table after each job, plus missing run reports at the end."""

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        hydra = config.get("hydra")
        if hydra is None or hydra.get("mode") != RunMode.MULTIRUN:
            return
        # the job's own folder less its subdir: the sweep dir exactly as this job's process resolved it
        output_dir = Path(hydra.runtime.output_dir)
        sweep_dir = output_dir.parents[len(Path(str(hydra.sweep.subdir)).parts) - 1]
        self._write(sweep_dir, run_reports="none")  # other workers' jobs may still be running

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._write(Path(config.hydra.sweep.dir), run_reports="missing")

    @staticmethod
    def _write(sweep_dir: Path, run_reports: str) -> None:
        from retentive.report.multirun_report import write_multirun_report

        try:
            path = write_multirun_report(sweep_dir, run_reports)
            log.info("multirun report: %s", path)
        except Exception as error:  # the runs are safe; the table can be rebuilt with python -m retentive.report
            log.warning("multirun report not written in %s: %s: %s", sweep_dir, type(error).__name__, error)
