"""report.html of a run and of a folder of runs, from real split-digits runs: the numbers shown are
results.json's, every figure folder has its section, broken files are named, not fatal."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from retentive.report import report_after_run, write_multirun_report, write_run_report
from retentive.report.figures import SKIPPED_FOLDERS, collect_figures, natural_key
from retentive.tabulate import read_runs
from tests.conftest import ROOT

# a real run with figures in two folders (the accuracy plots; one probe), kept cheap
OVERRIDES = ["dataset=split_digits", "logger=none", "callbacks=none",
             "+callbacks.plots._target_=retentive.callbacks.plots.ContinualPlots",
             "probes=default", "probes.captum.methods=[saliency]", "probes.captum.samples_per_task=1"]


def _hydra_run(out: Path, overrides: list[str]) -> Path:
    """A run as `python -m retentive.train` makes it (in-process: no second interpreter start),
    with the `.hydra/` files Hydra writes beside it."""
    from retentive.config import compose_config
    from retentive.runner import run

    cfg = compose_config(overrides, out)
    run(cfg, out)
    (out / ".hydra").mkdir(exist_ok=True)
    (out / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    (out / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    return out


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return _hydra_run(tmp_path_factory.mktemp("run"), OVERRIDES)


@pytest.fixture
def copy(run_dir, tmp_path):
    """A throw-away copy of the real run, to break files in."""
    return lambda name="copy": Path(shutil.copytree(run_dir, tmp_path / name))


class Elements(HTMLParser):
    """Every start tag's attributes, and the text inside elements that have an id."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.texts: dict[str, str] = {}
        self._open: list[str | None] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attributes = {k: v or "" for k, v in attrs}
        self.tags.append((tag, attributes))
        if tag not in ("img", "meta", "link", "br"):
            self._open.append(attributes.get("id"))
            if attributes.get("id"):
                self.texts[attributes["id"]] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag not in ("img", "meta", "link", "br") and self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for element in self._open:
            if element:
                self.texts[element] += data

    def between(self, start_id: str, tag: str) -> list[dict[str, str]]:
        """Attributes of every `tag` after the element `start_id` until the next element with an id
        of the same kind (the cells of one table)."""
        index = next(i for i, (_, a) in enumerate(self.tags) if a.get("id") == start_id)
        start_tag = self.tags[index][0]
        found = []
        for name, attributes in self.tags[index + 1:]:
            if name == start_tag and attributes.get("id"):
                break
            if name == tag:
                found.append(attributes)
        return found


def _png_folders(run_dir: Path) -> dict[str, int]:
    folders: dict[str, int] = {}
    for png in run_dir.rglob("*.png"):
        parts = png.relative_to(run_dir).parts[:-1]
        if not any(p in SKIPPED_FOLDERS or p.startswith(".") for p in parts):
            key = "/".join(parts) or "."
            folders[key] = folders.get(key, 0) + 1
    return folders


def test_run_report_shows_results_matrix_and_every_figure(run_dir):
    results = json.loads((run_dir / "results.json").read_text())
    html = write_run_report(run_dir).read_text()
    page = Elements(html)
    acc = next(a for _, a in page.tags if a.get("id") == "metric-ACC")
    assert float(acc["data-value"]) == results["ACC"]
    assert page.texts["metric-ACC"] == f"{results['ACC']:.4f}"
    assert page.texts["metric-BWT"] == f"{results['BWT']:.4f}"
    assert page.texts["status"] == "complete"
    cells = [float(a["data-value"]) for a in page.between("matrix-accuracy_matrix", "td")]
    assert cells == [v for row in results["accuracy_matrix"] for v in row]
    for item in OVERRIDES:
        assert item in page.texts["overrides"]
    folders = _png_folders(run_dir)
    assert "." in folders and len(folders) >= 2  # the plots callback's PNGs and the probe's folder
    sections = [a["data-folder"] for t, a in page.tags if t == "details" and "data-folder" in a]
    assert sorted(sections) == sorted(folders)
    images = [a for t, a in page.tags if t == "img"]
    assert len(images) == 1 + sum(folders.values())  # the curves from metrics.csv, then every PNG
    assert all(a["src"].startswith("data:image/png;base64,") for a in images)
    # one self-contained file: nothing fetched from anywhere, no script needed
    assert all(a[k].startswith("data:") for _, a in page.tags for k in ("src", "href") if k in a)
    assert "<script" not in html
    assert "problems" not in page.texts


def test_broken_files_are_named_and_the_rest_still_shown(copy):
    run = copy()
    (run / "results.json").write_text('{"ACC": 0.5, "accuracy_mat')  # cut off mid-write
    (run / "metrics.csv").unlink()
    probes = sorted((run / "probes").rglob("*.png"))
    probes[0].write_bytes(probes[0].read_bytes()[:200])  # a truncated PNG
    html = write_run_report(run).read_text()
    page = Elements(html)
    problems = page.texts["problems"]
    assert "results.json: unreadable (" in problems and "metrics.csv: missing" in problems
    broken, intact = (p.relative_to(run).as_posix() for p in probes[:2])
    assert f"{broken}: unreadable" in html
    images = [a["alt"] for t, a in page.tags if t == "img"]
    assert broken not in images and intact in images
    assert page.texts["status"] == "unknown"


def test_text_is_escaped_and_new_keys_are_rendered(copy):
    run = copy()
    results = json.loads((run / "results.json").read_text())
    accuracy = results["accuracy_matrix"]
    results["name"] = "<script>alert(1)</script>"
    # keys other parts add: a T x T matrix per explanation method, and summary scalars
    results["explanation_drift"] = {"saliency": {"similarity": [[1 - v for v in row] for row in accuracy]}}
    results["drift"] = {"saliency": sum(accuracy[-1]) / len(accuracy[-1])}
    (run / "results.json").write_text(json.dumps(results))
    html = write_run_report(run).read_text()
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    page = Elements(html)
    cells = [float(a["data-value"]) for a in page.between("matrix-explanation_drift.saliency.similarity", "td")]
    assert cells == [1 - v for row in accuracy for v in row]
    assert f"{results['drift']['saliency']:.4f}" in page.texts["scalars"]
    assert "drift.saliency" in page.texts["scalars"]


def test_cli_rebuilds_the_same_file(run_dir):
    first = write_run_report(run_dir).read_bytes()
    done = subprocess.run([sys.executable, "-m", "retentive.report", str(run_dir)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"report: {run_dir / 'report.html'}" in done.stdout
    assert (run_dir / "report.html").read_bytes() == first


def test_figures_capped_per_folder_latest_kept(run_dir):
    folder = max((f for f in _png_folders(run_dir) if f != "."), key=_png_folders(run_dir).get)
    names = sorted((p.name for p in (run_dir / folder).glob("*.png")), key=natural_key)  # one per task
    assert len(names) >= 5
    group = next(g for g in collect_figures(run_dir, limit=2) if g.folder == folder)
    assert [f.name for f in group.figures] == [f"{folder}/{n}" for n in names[-2:]]
    assert group.left_out == names[:-2]


def test_no_report_for_a_run_that_never_started(tmp_path):
    (tmp_path / ".hydra").mkdir()
    assert report_after_run(tmp_path) is None
    assert not (tmp_path / "report.html").exists()


def test_table_of_runs_links_each_run_and_names_broken_ones(run_dir, tmp_path):
    root = tmp_path / "sweep"
    shutil.copytree(run_dir, root / "0")
    (root / "0" / "report.html").unlink(missing_ok=True)
    _hydra_run(root / "1", ["dataset=split_digits", "logger=none", "callbacks=none", "seed=1"])
    (root / "2" / ".hydra").mkdir(parents=True)  # a job that stopped before its results
    (root / "2" / ".hydra" / "overrides.yaml").write_text("- seed=2\n")
    write_multirun_report(root)
    html = (root / "report.html").read_text()
    page = Elements(html)
    rows = [a["data-folder"] for t, a in page.tags if t == "tr" and "data-folder" in a]
    assert rows == ["0", "1", "2"]
    links = [a["href"] for t, a in page.tags if t == "a"]
    assert links == ["0/report.html", "1/report.html", "2/report.html"]  # written where missing
    assert all((root / link).exists() for link in links)
    thead = html[html.index('id="runs"'):html.index("</thead>")]
    headers = re.findall(r'<button type="button">([^<]*)</button>', thead)
    assert {"run", "seed", "status", "ACC", "BWT", "forgetting", "FWT", "seconds"} <= set(headers)
    acc_cells = [a.get("data-sort") for a in page.between("runs", "td")]
    for job in ("0", "1"):
        acc = json.loads((root / job / "results.json").read_text())["ACC"]
        assert repr(acc) in acc_cells
    assert "no results.json" in page.texts["runs"]
    assert "results.json: missing" in (root / "2" / "report.html").read_text()
    assert len(read_runs(root)) == 2  # tabulate reads the same runs through the shared functions
