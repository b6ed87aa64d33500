"""Which code made a result: the checkout's commit, recorded by every run in its results.json so a
reproduction row can name the commit its runs used, not the one checked out when it was collected."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CODE_PATHS = ("src", "conf")  # edits elsewhere (docs, tests, bench) do not change what a run computes


def _git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=10, check=True)
    return out.stdout.strip()


def git_commit(repo: Path = REPO, *, mark_dirty: bool = False) -> str:
    """Short HEAD commit of the checkout this package runs from ('unknown' outside git); with `mark_dirty`,
    '+dirty' appended when src/ or conf/ has uncommitted changes (the run's code is then not that commit)."""
    try:
        commit = _git(repo, "rev-parse", "--short", "HEAD") or "unknown"
        if mark_dirty and commit != "unknown" and _git(repo, "status", "--porcelain", "--untracked-files=no",
                                                       "--", *CODE_PATHS):
            commit += "+dirty"
        return commit
    except (OSError, subprocess.SubprocessError):
        return "unknown"
