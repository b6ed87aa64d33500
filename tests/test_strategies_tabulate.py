"""`python -m retentive.tabulate` groups a multirun directory over seeds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retentive.tabulate import main


def _job(root: Path, number: int, overrides: list[str], results: dict) -> None:
    job = root / str(number)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (job / "results.json").write_text(json.dumps({"status": "complete", **results}))


def test_mean_and_std_per_override_set_over_seeds(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    accs = {"ewc": [0.90, 0.92, 0.94], "si": [0.80, 0.80]}
    number = 0
    for strategy, values in accs.items():
        for seed, acc in enumerate(values):
            _job(tmp_path, number, [f"strategy={strategy}", f"seed={seed}", "dataset=split_mnist"],
                 {"ACC": acc, "BWT": -0.1 * seed})
            number += 1
    assert main([str(tmp_path), "--percent", "--metrics", "ACC", "BWT"]) == 0
    out = capsys.readouterr().out
    assert "shared: dataset=split_mnist" in out
    assert "| ewc | 3 | 92.00 ± 2.00 | -10.00 ± 10.00 |" in out
    assert "| si | 2 | 80.00 ± 0.00 | -5.00 ± 7.07 |" in out


def test_csv_and_incomplete_runs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _job(tmp_path, 0, ["strategy.lambda_=1", "seed=0"], {"ACC": 0.5})
    _job(tmp_path, 1, ["strategy.lambda_=1", "seed=1"], {"ACC": 0.7, "status": "failed at task 2: boom"})
    _job(tmp_path, 2, ["strategy.lambda_=10", "seed=0"], {"ACC": 0.6})
    assert main([str(tmp_path), "--csv", "--metrics", "ACC"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "strategy.lambda_,n,ACC_mean,ACC_std"
    assert lines[1] == "1,1,0.5,0"  # the failed run is not averaged in
    assert lines[2] == "10,1,0.6,0"
    assert main([str(tmp_path), "--csv", "--metrics", "ACC", "--include-incomplete"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[1] == "1,2,0.6,0.141421"


def test_empty_directory_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([str(tmp_path)]) == 2
    assert "no results.json" in capsys.readouterr().err


def test_an_unreadable_results_file_is_named_and_skipped(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _job(tmp_path, 0, ["strategy=ewc", "seed=0"], {"ACC": 0.9})
    _job(tmp_path, 1, ["strategy=ewc", "seed=1"], {"ACC": 0.7})
    (tmp_path / "1" / "results.json").write_text("")  # e.g. a run killed by an older version mid-write
    assert main([str(tmp_path), "--metrics", "ACC"]) == 0
    captured = capsys.readouterr()
    assert f"skipped {tmp_path / '1' / 'results.json'}: unreadable" in captured.err
    assert "| 1 | 0.90 ± 0.00 |" in captured.out  # the readable run is still tabulated
