"""The docs site builds strictly (a broken link or reference fails) and its config reference covers conf/."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from retentive.docsite.config_reference import flatten, group_page, key_comments, top_level_page

ROOT = Path(__file__).resolve().parent.parent


def test_every_option_and_key_of_a_group_is_documented_with_its_default_and_comment():
    page = group_page(ROOT / "conf" / "strategy")
    for path in (ROOT / "conf" / "strategy").glob("*.yaml"):
        assert f"### `{path.stem}`" in page
        for key, _ in flatten(yaml.safe_load(path.read_text())):
            assert f"| `{key}` |" in page, (path.name, key)
    ewc = page.split("### `ewc`")[1].split("### ")[0]
    assert "| `fisher` | `exact` |  | exact / sampled / empirical / batched |" in ewc
    assert "| `lambda_` | `100.0` | a number >= 0 |" in ewc  # the schema's constraint
    assert "| `_target_` | `retentive.strategies.ewc.EWC` |  |  |" in ewc  # header comment not taken as its meaning


def test_nested_keys_get_their_own_trailing_comments():
    comments = key_comments((ROOT / "conf" / "train.yaml").read_text())
    assert comments["schedule.epochs_per_task"] == "epochs on each task"
    assert comments["loader.batch_size"] == ""
    page = top_level_page(ROOT / "conf" / "train.yaml")
    assert "| `evaluation.split` | `val` |" in page
    assert "R\\[i\\]\\[j\\]" in page  # brackets escaped, not read as markdown reference links


@pytest.mark.skipif(shutil.which("mkdocs", path=str(Path(sys.executable).parent)) is None,
                    reason="mkdocs not installed (pip install -e '.[dev]')")
def test_make_docs_builds_strictly(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}
    result = subprocess.run([str(Path(sys.executable).parent / "mkdocs"), "build", "--strict", "-d", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "reference" / "config" / "strategy" / "index.html").exists()
    assert (tmp_path / "reference" / "api" / "retentive.strategies.ewc" / "index.html").exists()
    assert "Kirkpatrick et al. 2017" in (tmp_path / "reference" / "api" / "retentive.strategies.ewc" / "index.html").read_text()
