#!/usr/bin/env bash
# Issue 10, item 3: the rehearsal papers' own protocols, 3 seeds each, one run at a time.
#   buzzega2020: mammoth's Seq-MNIST (SGD lower bound; ER, DER, DER++, A-GEM, iCaRL at buffers 200 / 500),
#                Class-IL ACC and Task-IL-by-masking ACC_task_masked from the same runs.
#   vdv2019:     van de Ven & Tolias 2019 Split MNIST LwF (task / domain / class) and iCaRL (budget 2000).
# Runs go to $ROOT/<family>/<method>_<buffer>/seed<k>/ (logger=none). A run whose results.json says
# "complete" is skipped; one with a checkpoint is resumed (python -m retentive.train resume=<dir>);
# anything else is started afresh. After each family the rows of docs/reproductions.csv are collected
# (python -m retentive.reproductions collect) and docs/reproductions.md re-rendered.
# Usage: bash bench/lanes/issue10_runs.sh [buzzega2020|vdv2019 ...]   (default: both)
set -uo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} DATA_DIR=${DATA_DIR:-/work/shared/data} WANDB_MODE=offline
PY=${PY:-.venv/bin/python}
ROOT=${ROOT:-/work/main/outputs/repro}
SEEDS=${SEEDS:-"0 1 2"}
FAILED=()

status_of() {  # the run's results.json status, or "none"
  "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1])).get("status","none"))' "$1/results.json" 2>/dev/null \
    || echo none
}

run_one() {  # run_one <experiment> <run dir> <seed>
  local experiment=$1 dir=$2 seed=$3 status
  status=$(status_of "$dir")
  if [[ $status == complete ]]; then
    echo "skip   $dir (complete)"; return 0
  fi
  if [[ -f $dir/checkpoints/last.pt ]]; then
    echo "resume $dir ($status)"
    "$PY" -m retentive.train "resume=$dir" && return 0
  else
    echo "start  $dir"
    rm -rf "$dir"
    "$PY" -m retentive.train "experiment=$experiment" "seed=$seed" logger=none "hydra.run.dir=$dir" && return 0
  fi
  echo "FAILED $dir" >&2; FAILED+=("$dir"); return 1
}

collect() {  # collect <table> <method> <config> <metrics...> -- <run dirs...>
  local table=$1 method=$2 config=$3; shift 3
  local metrics=(); while [[ $1 != -- ]]; do metrics+=("$1"); shift; done; shift
  local done_dirs=(); for d in "$@"; do [[ $(status_of "$d") == complete ]] && done_dirs+=("$d"); done
  if (( ${#done_dirs[@]} == 0 )); then echo "no complete runs for $table / $method"; return 0; fi
  "$PY" -m retentive.reproductions collect "${done_dirs[@]}" --table "$table" --method "$method" \
    --config "$config" --paper "$PAPER" --metric "${metrics[@]}" --no-render || FAILED+=("collect $table/$method")
}

family_runs() {  # family_runs <family> <name> <experiment> -> sets DIRS
  local family=$1 name=$2 experiment=$3; DIRS=()
  for seed in $SEEDS; do
    local dir=$ROOT/$family/$name/seed$seed
    run_one "$experiment" "$dir" "$seed"; DIRS+=("$dir")
  done
}

buzzega2020() {
  PAPER="Buzzega et al. 2020"
  local method buffer name experiment table
  for spec in sgd:- er:200 der:200 derpp:200 agem:200 icarl:200 er:500 der:500 derpp:500 agem:500 icarl:500; do
    method=${spec%%:*}; buffer=${spec##*:}
    if [[ $buffer == - ]]; then name=$method; experiment=buzzega2020_seqmnist_sgd; table=buzzega2020-seq-mnist-nobuffer
    else name=${method}_$buffer; experiment=buzzega2020_seqmnist_${method}_$buffer; table=buzzega2020-seq-mnist-b$buffer; fi
    family_runs buzzega2020 "$name" "$experiment"
    collect "$table" "$([[ $method == sgd ]] && echo naive || echo "$method")" "experiment=$experiment" \
      ACC ACC_task_masked -- "${DIRS[@]}"
  done
  "$PY" -m retentive.reproductions render
}

vdv2019() {
  PAPER="van de Ven & Tolias 2019"
  for scenario in task domain class; do
    family_runs vdv2019 "lwf_$scenario" "vdv2019_split_${scenario}_lwf"
    collect vdv2019-split-mnist lwf "experiment=vdv2019_split_${scenario}_lwf" ACC forgetting -- "${DIRS[@]}"
  done
  family_runs vdv2019 icarl_2000 vdv2019_split_class_icarl
  collect vdv2019-split-mnist icarl experiment=vdv2019_split_class_icarl ACC forgetting -- "${DIRS[@]}"
  "$PY" -m retentive.reproductions render
}

for family in "${@:-buzzega2020 vdv2019}"; do
  for f in $family; do "$f"; done
done
"$PY" -m retentive.reproductions check || FAILED+=("reproductions check")
if (( ${#FAILED[@]} )); then printf 'failed: %s\n' "${FAILED[@]}" >&2; exit 1; fi
echo "all runs complete"
