"""Importance-guided surgery on real runs (sklearn digits as one 10-class task, a few epochs)."""

from __future__ import annotations

import copy
import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from retentive.config import compose_config
from retentive.data.loaders import plain_loader
from retentive.errors import ConfigError
from retentive.evaluate import rebuild
from retentive.resume.checkpoint import load_checkpoint
from retentive.runner import run
from retentive.surgery.cli import parse, surgery
from retentive.surgery.importances import compute, plan, stored_importance
from retentive.surgery.replace import NOISE_SCALE, replaced, replacement_values
from retentive.surgery.selection import Ranking, count, layer_of, layer_sizes, replaced_per_layer
from retentive.surgery.sweep import Setting, sweep

ROOT = Path(__file__).resolve().parents[1]
ONE_TASK = ["dataset=split_digits", "dataset.class_groups=[[0,1,2,3,4,5,6,7,8,9]]", "dataset.val_fraction=0.2",
            "logger=none", "callbacks=none"]


def _train(tmp_path_factory, name: str, *overrides: str) -> Path:
    out = tmp_path_factory.mktemp(name)
    run(compose_config([*ONE_TASK, *overrides], out), out)
    return out


@pytest.fixture(scope="module")
def ewc_run(tmp_path_factory) -> Path:
    return _train(tmp_path_factory, "ewc", "strategy=ewc", "schedule.consolidate_last_task=true",
                  "schedule.epochs_per_task=5")


@pytest.fixture(scope="module")
def restored(ewc_run):
    state = load_checkpoint(ewc_run / "checkpoints" / "last.pt")
    _, stream, net, strategy = rebuild(state)
    params = {n: p for n, p in net.named_parameters() if n.startswith("backbone.")}
    return state, stream, net, strategy, params


def test_pruning_the_most_important_by_fisher_hurts_more_than_random(restored):
    state, stream, net, strategy, params = restored
    fisher = stored_importance(state)
    randoms = {f"random{seed}": compute("random", net, params, [[]], None, seed) for seed in range(3)}
    importances = {"fisher": fisher, **randoms}
    rows = sweep(net, strategy, [stream.val(0)], params, importances, dict.fromkeys(importances, "x"), [0.0, 0.1],
                 [Setting("most", "model", "zero"), Setting("least", "model", "zero")])
    loss = {(r["importance"], r["remove"], r["p"]): r["loss"] for r in rows}
    base = loss[("fisher", "most", 0.0)]
    worst_random = max(loss[(name, remove, 0.1)] for name in randoms for remove in ("least", "most"))
    best_random = min(loss[(name, remove, 0.1)] for name in randoms for remove in ("least", "most"))
    # the 10% with the largest Fisher carry the task; a random 10% much less, the smallest 10% nothing
    assert loss[("fisher", "most", 0.1)] - base > 1.5 * (worst_random - base)
    assert loss[("fisher", "most", 0.1)] > base + 0.5
    assert loss[("fisher", "least", 0.1)] < best_random
    assert loss[("fisher", "least", 0.1)] == pytest.approx(base, abs=0.02)
    assert all(r["replaced"] == count(r["p"], r["total"]) for r in rows)


def test_fisher_computed_from_the_checkpoint_equals_the_stored_one(restored):
    state, stream, net, _, params = restored
    fresh = compute("fisher", net, params, [plain_loader(stream.train(0), 97)], None, 0)
    for name, stored in stored_importance(state).items():
        torch.testing.assert_close(fresh[name], stored, rtol=1e-4, atol=1e-9)


def test_layer_wise_and_model_wise_quantiles_replace_what_they_say(restored):
    state, *_, params = restored
    fisher = {n: stored_importance(state)[n] for n in params}
    sizes = layer_sizes({n: p.shape for n, p in params.items()})
    total = sum(sizes.values())
    for remove in ("least", "most"):
        layer = replaced_per_layer(Ranking(fisher, "layer").masks(0.3, remove))
        assert layer == {name: count(0.3, size) for name, size in sizes.items()}
        masks = Ranking(fisher, "model").masks(0.3, remove)
        model = replaced_per_layer(masks)
        assert sum(model.values()) == count(0.3, total)
        assert model != layer  # the Fisher is not spread evenly over layers
        chosen = torch.cat([fisher[n][masks[n]] for n in params])
        kept = torch.cat([fisher[n][~masks[n]] for n in params])
        assert (chosen.max() <= kept.min()) if remove == "least" else (chosen.min() >= kept.max())


def test_ties_are_broken_at_random_with_a_seed_and_p_is_exact(tmp_path_factory):
    out = _train(tmp_path_factory, "flips", "strategy=sign_flips", "schedule.consolidate_last_task=true",
                 "schedule.epochs_per_task=2")
    omega = stored_importance(load_checkpoint(out / "checkpoints" / "last.pt"))
    flat = torch.cat([o.flatten() for o in omega.values()])
    assert len(flat.unique()) < 40  # Ω = 1/(1 + flips): a handful of values for ~190k weights
    wanted = count(0.5, flat.numel())
    seed_rule = int((flat < torch.quantile(flat, 0.5)).sum())  # the seed's `Ω < quantile`
    assert seed_rule != wanted
    picks = [Ranking(omega, "model", seed).masks(0.5, "least") for seed in (0, 0, 1)]
    assert all(sum(int(m.sum()) for m in pick.values()) == wanted for pick in picks)
    same = all(torch.equal(picks[0][n], picks[1][n]) for n in omega)
    differ = any(not torch.equal(picks[0][n], picks[2][n]) for n in omega)
    assert same and differ


def test_noise_has_a_tenth_of_each_parameters_std_and_weights_come_back(restored):
    *_, params = restored
    name = max(params, key=lambda n: params[n].numel())  # the 400x400 hidden layer
    original = {n: p.detach().clone() for n, p in params.items()}
    noise = replacement_values(params, "noise", seed=3)
    target = NOISE_SCALE * float(original[name].std(correction=0))
    assert float(noise[name].std()) == pytest.approx(target, rel=0.02)
    assert abs(float(noise[name].mean())) < 4 * target / noise[name].numel() ** 0.5
    masks = Ranking(compute("random", None, params, [[]], None, 0), "layer").masks(0.5)
    with replaced(params, masks, noise) as n_replaced:
        w = params[name].detach()
        assert torch.equal(w[masks[name]], noise[name][masks[name]])
        assert torch.equal(w[~masks[name]], original[name][~masks[name]])
    assert n_replaced == sum(int(m.sum()) for m in masks.values())
    assert all(torch.equal(params[n].detach(), original[n]) for n in params)
    with replaced(params, masks, replacement_values(params, "zero")):
        assert int((params[name].detach()[masks[name]] != 0).sum()) == 0


def test_surgery_writes_csv_and_plots_and_names_missing_importances(ewc_run, tmp_path):
    args = parse([str(ewc_run), "--importance", "fisher", "random", "--p", "0", "0.1", "0.5", "--remove", "least",
                  "--scope", "model", "layer", "--out", str(tmp_path)])
    result = surgery(args, say=lambda line: None)
    with open(tmp_path / "surgery.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 2 * 3 and {r["source"] for r in rows if r["importance"] == "fisher"} == {"stored"}
    assert all(int(r["replaced"]) == count(float(r["p"]), int(r["total"])) for r in rows if r["scope"] == "model")
    assert {p.name for p in result["files"]} >= {"surgery_model_zero.png", "surgery_layer_zero.png"}
    assert all((tmp_path / f).stat().st_size > 10_000 for f in ("surgery_model_zero.png", "surgery_layer_zero.png"))
    with pytest.raises(ConfigError, match=r"has no 'si' importance .*strategy=si"):
        surgery(parse([str(ewc_run), "--importance", "si"]))
    state = load_checkpoint(ewc_run / "checkpoints" / "last.pt")
    unconsolidated = copy.deepcopy(state)
    unconsolidated["strategy"]["consolidated"]["importance"] = {}  # what a run without consolidate_last_task keeps
    with pytest.raises(ConfigError, match="consolidate_last_task=true"):
        plan(unconsolidated, None, ewc_run)
    assert [s.how for s in plan(unconsolidated, ["fisher"], ewc_run)] == ["computed"]


def test_a_run_without_importances_fails_with_one_line_before_any_work(tmp_path_factory):
    out = _train(tmp_path_factory, "naive", "strategy=naive")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "retentive.surgery", str(out)], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert str(out) in lines[0] and "Naive" in lines[0] and "--importance fisher" in lines[0]
    assert not (out / "surgery").exists()
    assert layer_of("backbone.0.weight") == "backbone.0"
