#!/usr/bin/env bash
# Shared by the reproduction lanes (bench/lanes/issue*_runs.sh): one run at a time under
# $ROOT/<family>/<name>/seed<k>/ (logger=none); a run whose results.json says "complete" is skipped, one
# with a checkpoint is resumed (python -m retentive.train resume=<dir>), anything else started afresh;
# `collect` writes docs/reproductions.csv rows from the complete runs (python -m retentive.reproductions).
# Environment: PY, ROOT, SEEDS, EXTRA (overrides added to fresh runs), CSV/DOC (copies for smoke tests).
# Source it after `cd` to the project root.
set -uo pipefail
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} DATA_DIR=${DATA_DIR:-/work/shared/data} WANDB_MODE=offline
PY=${PY:-.venv/bin/python}
ROOT=${ROOT:-/work/main/outputs/repro}
SEEDS=${SEEDS:-"0 1 2"}
read -r -a EXTRA_ARGS <<< "${EXTRA:-}"
CSV=${CSV:-docs/reproductions.csv} DOC=${DOC:-docs/reproductions.md}  # another pair for smoke tests
REPRO=("$PY" -m retentive.reproductions --csv "$CSV" --doc "$DOC")
FAILED=()

status_of() {  # the run's results.json status, or "none"
  "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1])).get("status","none"))' "$1/results.json" 2>/dev/null \
    || echo none
}

run_one() {  # run_one <run dir> <seed> <overrides...>
  local dir=$1 seed=$2 status; shift 2
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
    "$PY" -m retentive.train "$@" "seed=$seed" logger=none "${EXTRA_ARGS[@]}" "hydra.run.dir=$dir" && return 0
  fi
  echo "FAILED $dir" >&2; FAILED+=("$dir"); return 1
}

collect() {  # collect <table> <method> <config> <metrics...> -- <run dirs...>  (labels: the CSV's "not run" rows)
  # LABEL / PAPER_VALUE (optional) set the row's label and the first metric's published value
  local table=$1 method=$2 config=$3; shift 3
  local metrics=(); while [[ $1 != -- ]]; do metrics+=("$1"); shift; done; shift
  local done_dirs=(); for d in "$@"; do [[ $(status_of "$d") == complete ]] && done_dirs+=("$d"); done
  if (( ${#done_dirs[@]} == 0 )); then echo "no complete runs for $table / $method"; return 0; fi
  local given=(); [[ -n ${LABEL:-} ]] && given+=(--label "$LABEL"); [[ -n ${PAPER_VALUE:-} ]] && given+=(--paper-value "$PAPER_VALUE")
  "${REPRO[@]}" collect "${done_dirs[@]}" --table "$table" --method "$method" --config "$config" --paper "$PAPER" \
    "${given[@]}" --metric "${metrics[@]}" --no-render || FAILED+=("collect $table/$method")
}

family_runs() {  # family_runs <family> <name> <overrides...> -> sets DIRS
  local family=$1 name=$2; shift 2; DIRS=()
  for seed in $SEEDS; do
    local dir=$ROOT/$family/$name/seed$seed
    run_one "$dir" "$seed" "$@"; DIRS+=("$dir")
  done
}

