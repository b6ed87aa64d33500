"""docs/reproductions.csv -> docs/reproductions.md: the doc matches its CSV, render is deterministic,
check catches stale tables and self-contradicting rows, collect averages real runs."""

from __future__ import annotations

import json
import shutil
import statistics

import pytest

from retentive.config import compose_config
from retentive.provenance import git_commit
from retentive.reproductions.__main__ import main
from retentive.reproductions.collect import CollectError, collect_row
from retentive.reproductions.render import blocks, render_doc
from retentive.reproductions.table import judge, problems, read_rows, write_rows
from retentive.runner import run
from tests.conftest import QUIET, ROOT

CSV, DOC = ROOT / "docs" / "reproductions.csv", ROOT / "docs" / "reproductions.md"


def test_the_docs_tables_are_the_csv():
    assert main(["--csv", str(CSV), "--doc", str(DOC), "check"]) == 0
    rows = read_rows(CSV)
    doc = DOC.read_text()
    assert render_doc(doc, rows) == doc == render_doc(render_doc(doc, rows), rows)  # deterministic, idempotent
    # the paper's exact values, not "≈ 20", for the Class-IL regularisers
    class_il = {r["method"]: r["paper_value"] for r in rows
                if r["table"] == "vdv2019-split-mnist" and r["scenario"] == "class" and r["metric"] == "ACC"}
    assert (class_il["ewc"], class_il["online_ewc"], class_il["si"]) == ("20.01", "19.96", "19.99")
    permuted = {r["method"]: (r["paper_value"], r["status"]) for r in rows
                if r["table"] == "vdv2019-permuted-mnist" and r["metric"] == "ACC"}
    assert {m: v for m, (v, _) in permuted.items()} == {"naive": "78.51", "ewc": "94.31", "online_ewc": "94.42",
                                                        "si": "95.33", "joint": "97.59"}


@pytest.fixture
def copies(tmp_path):
    csv, doc = tmp_path / "r.csv", tmp_path / "r.md"
    shutil.copy(CSV, csv)
    shutil.copy(DOC, doc)
    return csv, doc


def test_check_fails_on_a_stale_doc_and_render_fixes_only_the_tables(copies, capsys):
    csv, doc = copies
    rows = read_rows(csv)
    target = next(r for r in rows if r["table"] == "vdv2019-split-mnist" and r["scenario"] == "task"
                  and r["method"] == "ewc" and r["metric"] == "ACC")
    target["ours_mean"], target["ours_std"] = "97.25", "0.5"
    target["status"] = judge(target["paper_value"], target["ours_mean"])
    write_rows(rows, csv)
    before = doc.read_text()
    assert main(["--csv", str(csv), "--doc", str(doc), "check"]) == 1
    assert "stale" in capsys.readouterr().err
    assert main(["--csv", str(csv), "--doc", str(doc), "render"]) == 0
    after = doc.read_text()
    assert "| EWC | `experiment=vdv2019_split_task_ewc` | 98.64 | 97.25 ± 0.50 |" in after
    assert "99.50 ± 0.11" not in after and target["status"] == "missed"
    spans = [(start, end) for start, end, _ in blocks(before)]
    outside = [before[:spans[0][0]]] + [before[a[1]:b[0]] for a, b in zip(spans, spans[1:], strict=False)]
    assert all(part in after for part in outside)  # the hand-written prose is untouched
    assert main(["--csv", str(csv), "--doc", str(doc), "check"]) == 0


def test_check_names_rows_that_contradict_themselves(copies, capsys):
    csv, doc = copies
    rows = read_rows(csv)
    rows[0]["status"] = "reproduced"  # Task-IL None: 92.63 vs the paper's 87.19 is a miss
    explained = next(r for r in rows if r["ours_values"] and r["n_seeds"] == "3")
    explained["ours_mean"] = f"{float(explained['ours_mean']) + 1:.2f}"
    write_rows(rows, csv)
    found = problems(rows)
    assert any("line 2" in p and "give 'missed'" in p for p in found)
    assert any("do not follow from its values" in p for p in found)
    assert main(["--csv", str(csv), "--doc", str(doc), "check"]) == 1


def _tiny_run(tmp_path, seed: int):
    out = tmp_path / f"seed{seed}"
    cfg = compose_config([*QUIET, "dataset=split_digits", "strategy=naive", f"seed={seed}"], out)
    return run(cfg, out), out


def test_collect_averages_real_runs_and_fills_a_waiting_row(tmp_path, copies):
    (first, dir0), (second, dir1) = _tiny_run(tmp_path, 0), _tiny_run(tmp_path, 1)
    values = [100 * first["ACC"], 100 * second["ACC"]]
    row = collect_row([dir0, dir1], "tiny", "naive", "ACC", config="dataset=split_digits strategy=naive")
    assert float(row["ours_mean"]) == pytest.approx(statistics.fmean(values), abs=1e-4)
    assert float(row["ours_std"]) == pytest.approx(statistics.stdev(values), abs=1e-4)
    assert row["seeds"] == "0;1" and row["n_seeds"] == "2" and row["status"] == "measured"
    assert row["scenario"] == "class" and row["dataset"] == "SplitDigits"
    # the row names the commit the runs recorded (this checkout's, '+dirty' if src/ or conf/ had edits)
    assert first["commit"] == second["commit"] == row["commit"] and row["commit"].split("+")[0] == git_commit()
    forgetting = collect_row([dir1, dir0], "tiny", "naive", "forgetting", config="c")
    assert forgetting["ours_values"].split(";")[0] == f"{100 * first['forgetting']:.4f}".rstrip("0").rstrip(".")

    # a 'not run' row of the same key keeps its paper value and gets the numbers; the doc follows
    csv, doc = copies
    rows = read_rows(csv)
    rows.append({**rows[0], "paper": "someone 2020", "table": "tiny", "scenario": "class", "dataset": "SplitDigits",
                 "method": "naive", "label": "None", "config": "dataset=split_digits strategy=naive", "metric": "ACC",
                 "paper_value": f"{statistics.fmean(values) + 0.5:.2f}", "ours_mean": "", "ours_std": "",
                 "ours_values": "", "seeds": "", "n_seeds": "", "commit": "", "date": "", "status": "not run",
                 "note": "waiting"})
    write_rows(rows, csv)
    doc.write_text(doc.read_text() + "\n<!-- reproductions: table=tiny -->\n<!-- /reproductions -->\n")
    assert main(["--csv", str(csv), "--doc", str(doc), "render"]) == 0
    assert "| None | `dataset=split_digits strategy=naive` |" in doc.read_text() and "not run" in doc.read_text()
    assert main(["--csv", str(csv), "--doc", str(doc), "collect", str(dir0), str(dir1 / "results.json"),
                 "--table", "tiny", "--method", "naive"]) == 0
    updated = [r for r in read_rows(csv) if r["table"] == "tiny"]
    assert len(updated) == 1 and updated[0]["status"] == "reproduced" and updated[0]["note"] == "waiting"
    assert updated[0]["paper"] == "someone 2020" and updated[0]["ours_mean"] == row["ours_mean"]
    assert f"{float(row['ours_mean']):.2f} ± {float(row['ours_std']):.2f}" in doc.read_text()
    assert main(["--csv", str(csv), "--doc", str(doc), "check"]) == 0


def test_collect_refuses_unfinished_or_duplicate_runs(tmp_path):
    (_, done) = _tiny_run(tmp_path, 0)
    with pytest.raises(CollectError, match="two runs with seed 0"):
        collect_row([done, done], "t", "naive")
    results = json.loads((done / "results.json").read_text())
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "results.json").write_text(json.dumps({**results, "status": "interrupted at task 2, epoch 0"}))
    with pytest.raises(CollectError, match="not complete"):
        collect_row([done, tmp_path / "cut"], "t", "naive")


def test_a_row_names_the_commits_its_runs_recorded(tmp_path):
    (_, dir0), (_, dir1) = _tiny_run(tmp_path, 0), _tiny_run(tmp_path, 1)
    for run_dir, commit in ((dir0, "1111111"), (dir1, "2222222+dirty")):  # as if run from two checkouts
        results = json.loads((run_dir / "results.json").read_text())
        (run_dir / "results.json").write_text(json.dumps({**results, "commit": commit}))
    assert collect_row([dir1, dir0], "t", "naive", config="c")["commit"] == "1111111;2222222+dirty"
    for run_dir in (dir0, dir1):  # runs from before commits were recorded: HEAD at collect time
        results = json.loads((run_dir / "results.json").read_text())
        (run_dir / "results.json").write_text(json.dumps({k: v for k, v in results.items() if k != "commit"}))
        still = [] if run_dir == dir1 else ["2222222+dirty"]  # a mixed row keeps the recorded commit too
        assert collect_row([dir0, dir1], "t", "naive", config="c")["commit"] == ";".join(sorted([git_commit(), *still]))
    # re-collecting a row (e.g. with more seeds) keeps the commit it named for runs that recorded none
    earlier = collect_row([dir0, dir1], "t", "naive", config="c", commit="3333333")
    assert collect_row([dir0, dir1], "t", "naive", config="c", rows=[earlier])["commit"] == "3333333"
