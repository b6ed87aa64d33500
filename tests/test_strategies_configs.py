"""Every importance strategy / reproduction config builds, runs through the CLI path, and rejects bad values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retentive.config import compose_config
from retentive.errors import ConfigError
from retentive.strategies import EWC, SI, ImportanceStrategy, OnlineEWC
from retentive.validation import build

CONF = Path(__file__).resolve().parents[1] / "conf"


def _is_importance_strategy(path: Path) -> bool:
    from hydra.utils import get_class
    from omegaconf import OmegaConf

    return issubclass(get_class(OmegaConf.load(path)["_target_"]), ImportanceStrategy)


MINE = sorted(p.stem for p in (CONF / "strategy").glob("*.yaml") if _is_importance_strategy(p))
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml")
                     if p.stem.startswith(("vdv2019_", "hsu2018_")))


@pytest.mark.parametrize("name", MINE)
def test_strategy_configs_build(tmp_path: Path, name: str) -> None:
    strategy = build(compose_config([f"strategy={name}"], tmp_path).strategy, "strategy")
    assert isinstance(strategy, ImportanceStrategy)
    assert strategy.lambda_ >= 0


def test_reproduction_configs_set_the_paper_protocol(tmp_path: Path) -> None:
    assert len(EXPERIMENTS) >= 16
    for name in EXPERIMENTS:
        cfg = compose_config([f"experiment={name}"], tmp_path)
        build(cfg.strategy, "strategy")
        permuted = "permuted" in name
        assert cfg.model.backbone.hidden == ([1000, 1000] if permuted else [400, 400])
        plain = name.endswith(("_sgd", "_adagrad"))  # Hsu et al.'s SGD / Adagrad fine-tuning rows: lr 0.01
        assert cfg.model.optimizer.lr == (1e-4 if permuted else 1e-2 if plain else 1e-3)
        assert cfg.loader.batch_size == 128
        if name.startswith("vdv2019_"):
            assert cfg.schedule.steps_per_task == (5000 if permuted else 2000)
        else:
            assert cfg.schedule.epochs_per_task == 4 and cfg.schedule.steps_per_task is None
    ewc = build(compose_config(["experiment=vdv2019_split_domain_ewc"], tmp_path).strategy, "strategy")
    assert type(ewc) is EWC and ewc.lambda_ == 1e10 and ewc.include_heads and ewc.fisher == "exact"
    online = build(compose_config(["experiment=vdv2019_split_task_online_ewc"], tmp_path).strategy, "strategy")
    assert type(online) is OnlineEWC and online.consolidated.mode == "online"
    si = build(compose_config(["experiment=vdv2019_split_task_si"], tmp_path).strategy, "strategy")
    assert type(si) is SI and si.lambda_ == 20.0 and si.damping == 0.1


@pytest.mark.parametrize(("override", "key"), [
    ("strategy.lambda_=-1", "strategy.lambda_"),
    ("strategy.fisher=kfac", "strategy.fisher"),
    ("strategy.consolidation=sometimes", "strategy.consolidation"),
    ("strategy=er strategy.buffer_size=0", "strategy.buffer_size"),
    ("strategy=er strategy.buffer_mode=fifo", "strategy.buffer_mode"),
    ("strategy=er strategy.replay_batch_size=0", "strategy.replay_batch_size"),
    ("strategy=lwf strategy.temperature=0", "strategy.temperature"),
    ("strategy=lwf strategy.alpha=-1", "strategy.alpha"),
    ("strategy=der strategy.alpha=-1", "strategy.alpha"),
    ("strategy=der strategy.buffer_size=0", "strategy.buffer_size"),
    ("strategy=derpp strategy.beta=-0.5", "strategy.beta"),
    ("strategy=derpp strategy.replay_batch_size=0", "strategy.replay_batch_size"),
    ("strategy=agem strategy.memory_batch_size=0", "strategy.memory_batch_size"),
    ("strategy=agem strategy.buffer_mode=fifo", "strategy.buffer_mode"),
    ("strategy=icarl strategy.buffer_size=0", "strategy.buffer_size"),
    ("strategy=icarl strategy.bce_weight=-1", "strategy.bce_weight"),
    ("strategy=gdumb strategy.buffer_size=0", "strategy.buffer_size"),
    ("strategy=gdumb strategy.samples_per_epoch=0", "strategy.samples_per_epoch"),
    ("strategy=gdumb strategy.reinit=maybe", "strategy.reinit"),
    ("strategy=saliency_replay strategy.weight=-1", "strategy.weight"),
    ("strategy=saliency_replay strategy.explanation_map=smoothgrad", "strategy.explanation_map"),
    ("strategy=saliency_replay strategy.explanation_map=input_gradient strategy.gradcam_layer=backbone.0",
     "strategy.gradcam_layer"),
    ("strategy=saliency_replay strategy.saliency_batch_size=0", "strategy.saliency_batch_size"),
    ("strategy=saliency_replay strategy.buffer_size=0", "strategy.buffer_size"),
    ("strategy=attention_distillation strategy.weight_attention=-1", "strategy.weight_attention"),
    ("strategy=attention_distillation strategy.temperature=0", "strategy.temperature"),
])
def test_bad_values_are_one_line_config_errors(tmp_path: Path, override: str, key: str) -> None:
    """Every strategy's bad values (EWC's when the override names no strategy)."""
    cfg = compose_config(["strategy=ewc", *override.split()], tmp_path)
    with pytest.raises(ConfigError) as error:
        build(cfg.strategy, "strategy")
    assert str(error.value).startswith(key) and "\n" not in str(error.value)


@pytest.mark.parametrize("strategy", ["ewc", "si"])
def test_runs_end_to_end_through_the_runner(run_config, strategy: str) -> None:
    summary, out = run_config("dataset=split_digits", "dataset.scenario=domain", f"strategy={strategy}",
                              "strategy.include_heads=true", "schedule.steps_per_task=15", "loader.batch_size=32")
    results = json.loads((out / "results.json").read_text())
    assert results["status"] == "complete" and results["strategy"] == strategy.upper()
    assert len(results["accuracy_matrix"]) == 5 and 0.0 <= summary["ACC"] <= 1.0


def test_hsu_lambdas_are_twice_the_authors_reg_coef() -> None:
    # their penalty has no 1/2 and ours does: every hsu2018 file states reg_coef in the comment of its lambda_
    import re

    files = sorted((Path(__file__).resolve().parents[1] / "conf" / "experiment").glob("hsu2018_split_*.yaml"))
    checked = 0
    for path in files:
        match = re.search(r"^\s+lambda_: ([0-9.e+-]+)\s+# 2 x reg_coef ([0-9.e+-]+)", path.read_text(), re.M)
        if match:
            assert float(match.group(1)) == pytest.approx(2 * float(match.group(2))), path.name
            checked += 1
    assert checked == 15  # EWC, online EWC, SI, L2, MAS x 3 scenarios
