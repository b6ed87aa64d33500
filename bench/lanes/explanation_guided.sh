#!/usr/bin/env bash
# Issue 10, item 3 (explanation-guided methods): does the explanation term help, in accuracy and in
# explanation drift? Split MNIST, 3 seeds, drift on (saliency + integrated gradients, 100 images/task):
#   er vs saliency_replay          MLP, Class-IL, buffer 200 (input-gradient maps)
#   lwf vs attention_distillation  CNN, Task-IL (GradCAM)
# Runs go to $ROOT/<dataset>/<strategy>/seed<k>/; complete runs are skipped, interrupted ones resumed.
# Table: python docs/explanation_guided.py  (reads the run dirs, writes docs/explanation_guided.csv)
set -uo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} DATA_DIR=${DATA_DIR:-/work/shared/data} WANDB_MODE=offline
PY=${PY:-.venv/bin/python}
ROOT=${ROOT:-/work/main/outputs/explanation_guided}
SEEDS=${SEEDS:-"0 1 2"}
DATASETS=${DATASETS:-"split_mnist"}

run() {  # run <dataset> <strategy> <seed> <overrides...>
  local dataset=$1 strategy=$2 seed=$3 dir=$ROOT/$1/$2/seed$3; shift 3
  if grep -qs '"status": "complete"' "$dir/results.json"; then echo "skip   $dir"; return; fi
  if [[ -f $dir/checkpoints/last.pt ]]; then "$PY" -m retentive.train "resume=$dir"; return; fi
  rm -rf "$dir"; echo "start  $dir"
  "$PY" -m retentive.train "dataset=$dataset" "strategy=$strategy" "seed=$seed" drift=default logger=none "$@" \
    "hydra.run.dir=$dir"
}

for dataset in $DATASETS; do for seed in $SEEDS; do
  for strategy in er saliency_replay; do run "$dataset" "$strategy" "$seed" dataset.scenario=class; done
  for strategy in lwf attention_distillation; do run "$dataset" "$strategy" "$seed" dataset.scenario=task model=cnn; done
done; done
