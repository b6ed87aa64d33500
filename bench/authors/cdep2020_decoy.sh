#!/usr/bin/env bash
# The CDEP authors' own DecoyMNIST script, run on CPU beside ours (docs/reproductions.md, "The CDEP authors'
# protocols"): laura-rieger/deep-explanation-penalization @ ac82aa4, mnist/DecoyMNIST/train_mnist_decoy.py with
# src/cd.py and src/score_funcs.py, nothing of it copied into this repository. Edits, all mechanical:
#   - CUDA -> CPU (`.cuda()` on the penalty accumulator, cd.py's default device, the per-step
#     torch.cuda.max_memory_allocated print); data/model paths; a final `FINAL_TEST_ACC` line;
#   - data: their 00_make_data.py, reading MNIST from $DATA_DIR, numpy seed 0, and the labels written in MNIST
#     order (their train_y.npy is ColorMNIST's 54k split, which cannot pair with the 60k decoy images:
#     TensorDataset refuses the size mismatch, so the script does not run as committed).
# Their script re-seeds torch with 0 for the train/held-out split, after reading --seed and before building the
# net and the loaders, so every --seed trains the same run. SEEDED=1 runs a copy that re-seeds with --seed right
# after the split (logs/decoy_r<rate>_s<seed>_seeded.log): the seed then reaches the init and the data order.
# Usage: CDEP_REPO=<checkout or bare mirror> bash bench/authors/cdep2020_decoy.sh <seed> <regularizer_rate> ...
#        (pairs of seed and rate; WORK=<dir> holds the patched copy, the data and logs/decoy_r<rate>_s<seed>.log)
WORK=${WORK:-/work/authors_cdep/w}
# shellcheck source=bench/authors/common.sh
source "$(dirname "$0")/common.sh"
if [[ ! -f $WORK/train_mnist_decoy.py ]]; then
  show_cpu src/cd.py > "$WORK/cd.py"
  show_cpu src/score_funcs.py > "$WORK/score_funcs.py"
  show mnist/DecoyMNIST/params_save.py > "$WORK/params_save.py"
  show mnist/DecoyMNIST/train_mnist_decoy.py | patch '
s = s.replace("torch.zeros(1,).cuda()", "torch.zeros(1,)")
s = s.replace("        print(torch.cuda.max_memory_allocated(0)/np.power(10,9))\n", "")
s = s.replace("\"../../data/ColorMNIST\"", "\"data\"").replace("model_path = \"../../models/DecoyMNIST\"", "model_path = \"models\"")
s = s.replace("sys.path.append(\x27../.\x27)", "sys.path.append(\x27.\x27)")
s = s.replace("save(s,  pid)", "save(s,  pid)\nprint(\"FINAL_TEST_ACC\", s.accs_test[-1], \"EPOCHS\", epoch)")' > "$WORK/train_mnist_decoy.py"
fi
if [[ ! -f $WORK/data/test_y.npy ]]; then
  (cd "$WORK" && "$PY" - <<'PYEOF'
import os, numpy as np, torchvision.datasets as datasets
np.random.seed(0)
for train, name in ((True, "train"), (False, "test")):
    ds = datasets.MNIST(root=os.environ["DATA_DIR"], train=train, download=False)
    x, y = ds.data[:, None].numpy().astype(np.float32), ds.targets.numpy().copy()
    c1, c2 = np.random.choice(2, size=len(x)) * 23, np.random.choice(2, size=len(x)) * 23
    for i in range(len(x)):
        x[i, :, c1[i]:c1[i] + 5, c2[i]:c2[i] + 5] = (255 - 25 * y[i]) if train else (0 + 25 * y[i])
    x /= x.max()
    np.save(f"data/{name}_x_decoy.npy", x * 2 - 1)
    np.save(f"data/{name}_y.npy", y)
PYEOF
  )
fi
script=train_mnist_decoy.py
if [[ ${SEEDED:-0} == 1 ]]; then
  script=train_mnist_decoy_seeded.py; export SUFFIX=_seeded
  patch '
split = "train_dataset, test_dataset,= torch.utils.data.random_split(complete_dataset, [num_train, num_test])\n"
assert split in s
s = s.replace(split, split + "torch.manual_seed(args.seed)\n")' < "$WORK/train_mnist_decoy.py" > "$WORK/$script"
fi
run_pairs decoy "$script" "--grad_method 0" -- "$@"
