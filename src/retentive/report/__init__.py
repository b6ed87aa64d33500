"""Self-contained HTML reports: `report.html` in every run dir and one per multirun (a sortable
table of its runs). Rebuild either with `python -m retentive.report <run or multirun dir>`."""

from retentive.report.multirun_report import write_multirun_report
from retentive.report.run_report import report_after_run, write_run_report

__all__ = ["report_after_run", "write_multirun_report", "write_run_report"]
