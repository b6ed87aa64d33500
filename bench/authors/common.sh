#!/usr/bin/env bash
# Shared by bench/authors/cdep2020_*.sh: where the authors' repository and the patched copy live, reading a file
# of it at ac82aa4 (CRLF -> LF), patching Python text, and running (seed, rate) pairs once each.
# Source it after setting WORK's default; environment: CDEP_REPO, WORK, PY, DATA_DIR.
set -euo pipefail
CDEP_REPO=${CDEP_REPO:-/work/.mirror/laura-rieger+deep-explanation-penalization/repo}
PY=${PY:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.venv/bin/python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} DATA_DIR=${DATA_DIR:-/work/shared/data}
mkdir -p "$WORK/data" "$WORK/models" "$WORK/logs"

show() {  # show <path in their repository>: the file at ac82aa4 (bare mirror or checkout), LF line ends
  { git --git-dir="$CDEP_REPO" show "ac82aa4:$1" 2>/dev/null || git -C "$CDEP_REPO" show "ac82aa4:$1"; } | tr -d '\r'
}

show_cpu() {  # show <path> with cd.py / score_funcs.py's default device moved to the CPU
  show "$1" | sed "s/device='cuda'/device='cpu'/g"
}

patch() {  # patch <Python statements editing s>: stdin -> stdout
  "$PY" -c "import sys
s = sys.stdin.read()
$1
sys.stdout.write(s)"
}

run_pairs() {  # run_pairs <log prefix> <script> <extra args> -- <seed> <rate> ...: each pair once, logged
  local prefix=$1 script=$2 extra=$3; shift 4
  while (( $# >= 2 )); do
    local seed=$1 rate=$2 log; shift 2
    log=$WORK/logs/${prefix}_r${rate}_s${seed}${SUFFIX:-}.log
    if grep -q FINAL_TEST_ACC "$log" 2>/dev/null; then grep FINAL_TEST_ACC "$log"; continue; fi
    # shellcheck disable=SC2086  # extra holds whole arguments
    (cd "$WORK" && "$PY" "$script" --seed "$seed" --regularizer_rate "$rate" $extra > "$log" 2>&1)
    echo "seed $seed rate $rate: $(grep FINAL_TEST_ACC "$log")"
  done
}
