"""The reports in a real browser: headless Chromium (Debian's `chromium`, installed here when
missing) opens a multirun's report.html and a run's over file://, driven by Playwright. Every image
must load, the console must stay free of errors, the table must sort, and its links must resolve."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

CHROMIUM = Path("/usr/bin/chromium")
# As root Chromium needs --no-sandbox (Playwright adds it); the rest keeps it off the network.
FLAGS = ["--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-quic"]
OVERRIDES = ["dataset=split_digits", "logger=none", "callbacks=none",
             "+callbacks.plots._target_=retentive.callbacks.plots.ContinualPlots",
             "probes=default", "probes.captum.methods=[saliency]", "probes.captum.samples_per_task=1"]


def _install_chromium() -> str | None:
    """Install Debian's chromium where it is missing; None when it is there, else why not."""
    if CHROMIUM.exists():
        return None
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return "/usr/bin/chromium is missing and apt-get cannot install it here (needs Debian and root)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"]
    for step in (install, ["apt-get", "update", "-q"], install):  # update only if the first try fails
        try:
            done = subprocess.run(step, capture_output=True, text=True, env=env, timeout=900)
        except subprocess.TimeoutExpired:
            return f"'{' '.join(step)}' timed out"
        if step is install and done.returncode == 0 and CHROMIUM.exists():
            return None
    return f"apt-get install chromium failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}"


@pytest.fixture(scope="session")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install -e '.[dev]')")
    problem = _install_chromium()
    if problem:
        pytest.skip(f"no headless Chromium: {problem}")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """A real 2-job multirun from the command line: every job writes its report, Hydra's callback the table."""
    sweep_dir = tmp_path_factory.mktemp("sweep") / "multirun"
    command = [sys.executable, "-m", "retentive.train", "-m", *OVERRIDES, "seed=0,1", f"hydra.sweep.dir={sweep_dir}"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "WANDB_MODE": "offline"})
    assert done.returncode == 0, done.stderr[-3000:]
    return sweep_dir


def _open(browser, path: Path):
    """The page at `path` once loaded, and the list its console errors, page errors and failed
    requests are collected into."""
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    errors: list[str] = []
    page.on("console", lambda message: errors.append(f"console {message.type}: {message.text}")
            if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    page.on("requestfailed", lambda request: errors.append(f"request failed: {request.url}"))
    page.goto(path.as_uri(), wait_until="load")
    return page, errors


def _images(page) -> list[tuple[str, bool, int]]:
    return page.eval_on_selector_all("img", "imgs => imgs.map(i => [i.alt, i.complete, i.naturalWidth])")


def _column(page, table: str, index: int) -> list[str]:
    return page.eval_on_selector_all(f"#{table} tbody tr",
                                     f"rows => rows.map(r => r.cells[{index}].getAttribute('data-sort'))")


def test_multirun_report_sorts_and_links_every_run(browser, sweep):
    jobs = sorted(p.parent for p in sweep.glob("*/results.json"))
    assert [j.name for j in jobs] == ["0", "1"]
    accs = {job.name: json.loads((job / "results.json").read_text())["ACC"] for job in jobs}
    for job in jobs:  # written by the run itself (train.py), before Hydra's end-of-sweep callback
        assert f"report: {job / 'report.html'}" in (job / "train.log").read_text()
    page, errors = _open(browser, sweep / "report.html")
    headers = page.eval_on_selector_all("#runs thead th", "cells => cells.map(c => c.textContent.trim())")
    acc_column = headers.index("ACC")
    page.click(f"#runs thead th:nth-child({acc_column + 1}) button")
    ascending = page.eval_on_selector_all("#runs tbody tr", "rows => rows.map(r => r.dataset.folder)")
    assert ascending == sorted(accs, key=accs.get)
    assert [float(v) for v in _column(page, "runs", acc_column)] == sorted(accs.values())
    page.click(f"#runs thead th:nth-child({acc_column + 1}) button")
    assert page.eval_on_selector_all("#runs tbody tr", "rows => rows.map(r => r.dataset.folder)") == ascending[::-1]
    assert page.get_attribute(f"#runs thead th:nth-child({acc_column + 1})", "aria-sort") == "descending"
    links = page.eval_on_selector_all("#runs tbody a", "links => links.map(a => a.href)")
    assert sorted(links) == sorted((job / "report.html").as_uri() for job in jobs)
    assert all((job / "report.html").is_file() for job in jobs)
    assert all(loaded and width > 0 for _, loaded, width in _images(page))
    assert errors == []
    page.close()


def test_run_report_shows_every_image(browser, sweep):
    job = sweep / "0"
    pngs = [p for p in job.rglob("*.png") if ".hydra" not in p.parts]
    page, errors = _open(browser, job / "report.html")
    images = _images(page)
    assert len(images) == len(pngs) + 1  # every PNG of the run, and the curves drawn from metrics.csv
    broken = [alt for alt, loaded, width in images if not (loaded and width > 0)]
    assert broken == []
    acc = json.loads((job / "results.json").read_text())["ACC"]
    assert float(page.get_attribute("#metric-ACC", "data-value")) == acc
    page.click("details:has(pre) summary")  # the collapsed config opens
    assert "dataset:" in page.inner_text("details:has(pre) pre")
    assert errors == []
    page.close()
