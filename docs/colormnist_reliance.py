"""What the ColorMNIST runs classify by: colour or shape (docs/reproductions.md, "The CDEP authors' protocols").

    .venv/bin/python docs/colormnist_reliance.py outputs/repro/cdep2020/color_{vanilla,cdep,cdep_5ep,cdep_5ep_trainval,cdep_w500,cdep_w1000} \\
        > docs/colormnist_reliance.csv
    .venv/bin/python docs/colormnist_reliance.py --markdown docs/colormnist_reliance.csv   # the table in the doc

One row per finished run (`<method dir>/seed<k>/checkpoints/last.pt`: the weights the run tested), on all 10,000 MNIST
test digits painted three ways and standardised with the run's own train-split statistics:
- `acc`: the test colouring (class y in colour 9 - y) — the reported accuracy, recomputed as a check;
- `follows_colour`: share of those test digits labelled 9 - y, the class whose *training* colour they wear;
- `acc_random_colour`: each digit in one of the 10 colours drawn at random — colour carries no label, so this
  is what the shape alone gets (chance 10 %);
- `acc_train_colour`: class y in colour y, as in training (shape and colour agree).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import torch
from camloss_spatial import complete_runs, markdown

COLUMNS = ("family", "method", "seed", "acc", "follows_colour", "acc_random_colour", "acc_train_colour")


def measure(run: Path) -> dict:
    from retentive.data.sources import load_mnist
    from retentive.data.spurious import class_palette
    from retentive.evaluate import rebuild
    from retentive.resume.checkpoint import load_checkpoint

    _, stream, net, _ = rebuild(load_checkpoint(run / "checkpoints" / "last.pt"))
    grey = load_mnist(stream.data_dir, train=False)
    y, palette = grey.labels, class_palette(10).float()
    random_colour = torch.randint(0, 10, y.shape, generator=torch.Generator().manual_seed(0))

    def predict(colour: torch.Tensor) -> torch.Tensor:
        tinted = (grey.images.float() * palette[colour].view(-1, 3, 1, 1) / 255.0).round() / 255.0
        x = (tinted - stream.mean) / stream.std  # as TaskDataset does (mean 0 / std 1 unless standardised)
        with torch.no_grad():
            return torch.cat([net(chunk).argmax(1) for chunk in x.split(1000)])

    test = predict(9 - y)
    return {
        "family": run.parent.parent.name, "method": run.parent.name, "seed": int(run.name.removeprefix("seed")),
        "acc": float((test == y).float().mean()), "follows_colour": float((test == 9 - y).float().mean()),
        "acc_random_colour": float((predict(random_colour) == y).float().mean()),
        "acc_train_colour": float((predict(y) == y).float().mean()),
    }


def main(argv: list[str]) -> None:
    if argv[:1] == ["--markdown"]:
        with open(argv[1], newline="") as handle:
            print(markdown(list(csv.DictReader(handle)), COLUMNS))
        return
    writer = csv.DictWriter(sys.stdout, COLUMNS, lineterminator="\n")
    writer.writeheader()
    for method_dir in map(Path, argv):
        for run in complete_runs(method_dir):
            row = measure(run)
            writer.writerow({k: f"{v:.4f}" if isinstance(v, float) else v for k, v in row.items()})


if __name__ == "__main__":
    main(sys.argv[1:])
