#!/usr/bin/env bash
# The CDEP authors' own ColorMNIST script, run on CPU beside ours (docs/reproductions.md, "The CDEP authors'
# protocols"): laura-rieger/deep-explanation-penalization @ ac82aa4, mnist/ColorMNIST/{00_make_data,train,model,
# params_save}.py with src/cd.py and src/score_funcs.py; nothing of it copied into this repository. Edits, all
# mechanical: CUDA -> CPU (`.cuda()` on the penalty accumulator, cd.py's default device), data/model paths, MNIST
# read from $DATA_DIR without download, a final `FINAL_TEST_ACC` line. Their data script needs the `colour`
# package (PyPI), installed into $WORK/pkgs.
# Usage: CDEP_REPO=<checkout or bare mirror> bash bench/authors/cdep2020_color.sh <seed> <regularizer_rate> ...
#        (pairs; their default --epochs 1; WORK=<dir> holds the patched copy, data and logs/color_r<rate>_s<seed>.log)
WORK=${WORK:-/work/authors_cdep/color}
# shellcheck source=bench/authors/common.sh
source "$(dirname "$0")/common.sh"
if [[ ! -f $WORK/train.py ]]; then
  show_cpu src/cd.py > "$WORK/cd.py"
  show_cpu src/score_funcs.py > "$WORK/score_funcs.py"
  show mnist/ColorMNIST/params_save.py > "$WORK/params_save.py"
  show mnist/ColorMNIST/model.py > "$WORK/model.py"
  show mnist/ColorMNIST/train.py | patch '
s = s.replace("torch.zeros(1,).cuda()", "torch.zeros(1,)")
s = s.replace("\"../../data/ColorMNIST\"", "\"data\"").replace("model_path = \"../../models/ColorMNIST_test\"", "model_path = \"models\"")
s = s.replace("sys.path.append(\x27../../src\x27)", "sys.path.append(\x27.\x27)")
s = s.replace("save(s,  pid)", "save(s,  pid)\nprint(\x27FINAL_TEST_ACC\x27, s.acc_test, \x27DEV\x27, s.accs_dev)")' > "$WORK/train.py"
  show mnist/ColorMNIST/00_make_data.py | patch '
s = s.replace("import sys\n", "import sys\nsys.path.insert(0, \x27pkgs\x27)\nimport os as _os\n")
s = s.replace("root=\x27../../data\x27, train=True, download=True", "root=_os.environ[\x27DATA_DIR\x27], train=True, download=False")
s = s.replace("root=\x27../../data\x27, train=False, download=True", "root=_os.environ[\x27DATA_DIR\x27], train=False, download=False")
s = s.replace("\"../../data/ColorMNIST\"", "\"data\"")' > "$WORK/make_data.py"
fi
[[ -f $WORK/pkgs/colour.py ]] || "$PY" -m pip install -q --target "$WORK/pkgs" colour
[[ -f $WORK/data/test_y.npy ]] || (cd "$WORK" && "$PY" make_data.py > /dev/null)
run_pairs color train.py "" -- "$@"
