"""report.html of one run: config, summary metrics, matrices, curves and every figure, in one file
that opens offline. Built from the run dir alone, so it can be rebuilt at any time."""

from __future__ import annotations

import logging
from pathlib import Path

from retentive.report.figures import MAX_PER_FOLDER, collect_figures, curves_png, data_uri
from retentive.report.reading import read_run
from retentive.report.render import REPORT_NAME, render, write_html
from retentive.report.values import status_class, summarize

log = logging.getLogger("retentive")


def run_report_html(run_dir: str | Path) -> str:
    """The report's HTML; problems with the run's files are listed in it, never raised."""
    files = read_run(run_dir)
    summary = summarize(files.results)
    curves = curves_png(files.history, summary.task_names) if files.history else None
    status = str(files.results.get("status", "unknown"))
    return render(
        "run.html.j2",
        title=str(files.results.get("name") or files.run_dir.name),
        run_dir=str(files.run_dir.resolve()),
        status=status,
        status_class=status_class(status),
        overrides=files.overrides,
        problems=files.problems,
        summary=summary,
        curves=data_uri(curves) if curves else None,
        figure_groups=collect_figures(files.run_dir),
        per_folder=MAX_PER_FOLDER,
        config_text=files.config_text,
    )


def write_run_report(run_dir: str | Path) -> Path:
    """Write `<run_dir>/report.html` (atomically) and return its path."""
    run_dir = Path(run_dir)
    return write_html(run_dir / REPORT_NAME, run_report_html(run_dir))


def report_after_run(run_dir: str | Path) -> Path | None:
    """The end-of-run hook (train.py): a report for any run that wrote results.json, whatever its
    status; a report that cannot be written is a warning, never the run's failure."""
    if not (Path(run_dir) / "results.json").exists():
        return None  # stopped before training (a config error): nothing to report
    try:
        path = write_run_report(run_dir)
        log.info("report: %s", path)
        return path
    except Exception as error:  # the run's own results are safe already; say why, go on
        log.warning("report.html not written: %s: %s", type(error).__name__, error)
        return None
