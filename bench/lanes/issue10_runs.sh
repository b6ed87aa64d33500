#!/usr/bin/env bash
# Issue 10, item 3: the rehearsal papers' own protocols, 3 seeds each, one run at a time.
#   buzzega2020: mammoth's Seq-MNIST (SGD lower bound; ER, DER, DER++, A-GEM, iCaRL at buffers 200 / 500),
#                Class-IL ACC and Task-IL-by-masking ACC_task_masked from the same runs.
#   vdv2019:     van de Ven & Tolias 2019 Split MNIST LwF (task / domain / class) and iCaRL (budget 2000).
# Runs go to $ROOT/<family>/<method>_<buffer>/seed<k>/ (logger=none). A run whose results.json says
# "complete" is skipped; one with a checkpoint is resumed (python -m retentive.train resume=<dir>);
# anything else is started afresh. After each family the rows of docs/reproductions.csv are collected
# (python -m retentive.reproductions collect) and docs/reproductions.md re-rendered.
#   buzzega2020_variants: ER with mammoth's Xavier init, iCaRL as mammoth's (BCE only, raw features).
# Usage: bash bench/lanes/issue10_runs.sh [buzzega2020|buzzega2020_variants|vdv2019 ...]   (default: buzzega2020 vdv2019)
cd "$(dirname "$0")/../.."
# shellcheck source=bench/lanes/common.sh
source bench/lanes/common.sh

buzzega2020() {
  PAPER="Buzzega et al. 2020"
  local method buffer name experiment table
  for spec in sgd:- er:200 der:200 derpp:200 agem:200 icarl:200 er:500 der:500 derpp:500 agem:500 icarl:500; do
    method=${spec%%:*}; buffer=${spec##*:}
    if [[ $buffer == - ]]; then name=$method; experiment=buzzega2020_seqmnist_sgd; table=buzzega2020-seq-mnist-nobuffer
    else name=${method}_$buffer; experiment=buzzega2020_seqmnist_${method}_$buffer; table=buzzega2020-seq-mnist-b$buffer; fi
    family_runs buzzega2020 "$name" "experiment=$experiment"
    collect "$table" "$([[ $method == sgd ]] && echo naive || echo "$method")" "experiment=$experiment" \
      ACC ACC_task_masked -- "${DIRS[@]}"
  done
  "${REPRO[@]}" render
}

buzzega2020_variants() {  # the two protocol differences left, measured: mammoth's init for ER, mammoth's iCaRL
  PAPER="Buzzega et al. 2020"
  local spec method buffer label extra acc masked
  for spec in "er|200|ER, Xavier init (mammoth's)|model.init=xavier|80.43|97.86" \
              "er|500|ER, Xavier init (mammoth's)|model.init=xavier|86.12|99.04" \
              "icarl|200|iCaRL, mammoth's variant (BCE only, raw features)|strategy.ce_weight=0 strategy.normalize=false|70.51|98.28" \
              "icarl|500|iCaRL, mammoth's variant (BCE only, raw features)|strategy.ce_weight=0 strategy.normalize=false|70.10|98.32"; do
    IFS='|' read -r method buffer label extra acc masked <<< "$spec"
    local args=("experiment=buzzega2020_seqmnist_${method}_$buffer"); read -r -a more <<< "$extra"; args+=("${more[@]}")
    local variant; variant=$([[ $method == er ]] && echo xavier || echo mammoth)
    local name=${method}_${buffer}_$variant
    family_runs buzzega2020 "$name" "${args[@]}"
    LABEL=$label PAPER_VALUE=$acc collect "buzzega2020-seq-mnist-b$buffer" "${method}_$variant" "${args[*]}" ACC \
      -- "${DIRS[@]}"
    LABEL=$label PAPER_VALUE=$masked collect "buzzega2020-seq-mnist-b$buffer" "${method}_$variant" "${args[*]}" \
      ACC_task_masked -- "${DIRS[@]}"
  done
  "${REPRO[@]}" render
}

vdv2019() {
  PAPER="van de Ven & Tolias 2019"
  for scenario in task domain class; do
    family_runs vdv2019 "lwf_$scenario" "experiment=vdv2019_split_${scenario}_lwf"
    collect vdv2019-split-mnist lwf "experiment=vdv2019_split_${scenario}_lwf" ACC forgetting -- "${DIRS[@]}"
  done
  family_runs vdv2019 icarl_2000 experiment=vdv2019_split_class_icarl
  collect vdv2019-split-mnist icarl experiment=vdv2019_split_class_icarl ACC forgetting -- "${DIRS[@]}"
  "${REPRO[@]}" render
}

for family in "${@:-buzzega2020 vdv2019}"; do
  for f in $family; do "$f"; done
done
"${REPRO[@]}" check || FAILED+=("reproductions check")
if (( ${#FAILED[@]} )); then printf 'failed: %s\n' "${FAILED[@]}" >&2; exit 1; fi
echo "all runs complete"
