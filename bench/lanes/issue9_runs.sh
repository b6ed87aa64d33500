#!/usr/bin/env bash
# Issue 9, items 1 and 3: the authors' own protocols, one run at a time.
#   cdep2020:  CDEP authors' DecoyMNIST / ColorMNIST protocol (unpadded net, full 54k train split, early
#              stopping on the held-out loss), vanilla and CDEP, seeds 0-2; then the questionable-choice
#              variants (DecoyMNIST: test the best-validation weights; ColorMNIST: validation coloured like train).
#   camloss:   CAM loss (lint's centre kernel + phase schedule) vs vanilla on DecoyMNIST's corner patch, seeds 0-2.
#   hsu2018:   Hsu et al. 2018 Split MNIST, 11 methods x task / domain / class, seeds 0-2.
#   permuted:  van de Ven & Tolias 2019 Permuted MNIST Domain-IL (naive, EWC, SI, joint, online EWC), seeds 0-1.
# Runs go to $ROOT/<family>/<method>/seed<k>/ (logger=none). A run whose results.json says "complete" is
# skipped; one with a checkpoint is resumed (python -m retentive.train resume=<dir>); anything else is
# started afresh. After each family the rows of docs/reproductions.csv are collected
# (python -m retentive.reproductions collect) and docs/reproductions.md re-rendered.
# Usage: bash bench/lanes/issue9_runs.sh [cdep2020|camloss|hsu2018|cdep2020_sweep ...]
#        (default: cdep2020 camloss hsu2018, in that order; cdep2020_sweep: seed-0 weight sweep, not collected)
# EXTRA="dataset.train_samples_per_task=200" adds overrides to fresh runs (smoke tests: give another ROOT, and
# CSV/DOC copies so docs/ is left alone).
cd "$(dirname "$0")/../.."
# shellcheck source=bench/lanes/common.sh
source bench/lanes/common.sh

cdep2020() {
  PAPER="Rieger et al. 2020 (CDEP)"
  local spec name experiment extra
  # name | experiment | extra override (- for none); the last two are the other side of the authors' questionable choices
  for spec in \
    "decoy_vanilla|cdep2020_decoy_vanilla|-" \
    "decoy_cdep|cdep2020_decoy_cdep|-" \
    "color_vanilla|cdep2020_color_vanilla|-" \
    "color_cdep|cdep2020_color_cdep|-" \
    "decoy_cdep_restore|cdep2020_decoy_cdep|callbacks.early_stopping.restore_best=true" \
    "color_cdep_valtrain|cdep2020_color_cdep|dataset.val_colours=train"; do
    IFS='|' read -r name experiment extra <<< "$spec"
    local args=("experiment=$experiment"); [[ $extra != - ]] && args+=("$extra")
    family_runs cdep2020 "$name" "${args[@]}"
    local method=${name#*_}
    collect cdep2020-protocol "$method" "${args[*]}" ACC -- "${DIRS[@]}"
  done
  "${REPRO[@]}" render
}

camloss() {
  PAPER="ours"
  family_runs camloss_spatial vanilla experiment=camloss_spatial_vanilla
  collect camloss-spatial vanilla experiment=camloss_spatial_vanilla ACC -- "${DIRS[@]}"
  family_runs camloss_spatial camloss experiment=camloss_spatial_camloss
  collect camloss-spatial camloss experiment=camloss_spatial_camloss ACC -- "${DIRS[@]}"
  "${REPRO[@]}" render
}

cdep2020_sweep() {  # not in the default list: DecoyMNIST CDEP weight sweep (their grid), seed 0 only, no CSV rows
  local weight
  for weight in 10 100 1000 10000; do
    run_one "$ROOT/cdep2020_sweep/decoy_cdep_w$weight/seed0" 0 experiment=cdep2020_decoy_cdep "explanation.weight=$weight"
  done
}

hsu2018() {
  PAPER="Hsu et al. 2018"
  local method scenario
  for scenario in task domain class; do
    for method in adam sgd adagrad l2 naive_rehearsal naive_rehearsal_c ewc online_ewc si mas lwf; do
      family_runs hsu2018 "${method}_$scenario" "experiment=hsu2018_split_${scenario}_$method"
      collect hsu2018-split-mnist "$method" "experiment=hsu2018_split_${scenario}_$method" ACC -- "${DIRS[@]}"
    done
  done
  "${REPRO[@]}" render
}

permuted() {  # item 2: van de Ven & Tolias 2019 Permuted MNIST, Domain-IL (32x32, 10 x 5000 steps; ~35-55 min a run on CPU)
  PAPER="van de Ven & Tolias 2019"
  local method
  for method in naive ewc si joint online_ewc; do
    SEEDS=${PERMUTED_SEEDS:-"0 1"} family_runs permuted_domain "$method" "experiment=vdv2019_permuted_$method" callbacks=none
    collect vdv2019-permuted-mnist "$method" "experiment=vdv2019_permuted_$method" ACC forgetting -- "${DIRS[@]}"
  done
  "${REPRO[@]}" render
}

for family in "${@:-cdep2020 camloss hsu2018}"; do
  for f in $family; do "$f"; done
done
"${REPRO[@]}" check || FAILED+=("reproductions check")
if (( ${#FAILED[@]} )); then printf 'failed: %s\n' "${FAILED[@]}" >&2; exit 1; fi
