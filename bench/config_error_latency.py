"""How long a config mistake takes to reach the user: wall time of `python -m retentive.train <bad override>`
from process start to its one `error:` line and exit 2 (target: <= 2 s; before the schema preflight it
was ~7 s, the cost of importing torch and Lightning). A full `import retentive.runner` is timed
in the same run for comparison.
Usage: OMP_NUM_THREADS=1 python bench/config_error_latency.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

MISTAKES = (["seed=abc"], ["model.optimizer.lrr=0.1"], ["trainer.precision=17"], ["strategy=ewc", "strategy.lambda_=-1"],
            ["dataset=imagenet"], ["-m", "seed=0,1", "loader.batch_size=64,0"])


def timed(args: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True)
    return time.perf_counter() - start, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    repeats = parser.parse_args().repeats
    print("| mistake | error line | median s | max s |\n|---|---|---|---|")
    for mistake in MISTAKES:
        times, line = [], ""
        for _ in range(repeats):
            seconds, done = timed(["-m", "retentive.train", *mistake])
            assert done.returncode == 2, done.stderr
            times.append(seconds)
            line = done.stderr.strip().splitlines()[-1]
        print(f"| `{' '.join(mistake)}` | `{line[:70]}` | {statistics.median(times):.2f} | {max(times):.2f} |")
    imports = [timed(["-c", "import retentive.runner"])[0] for _ in range(repeats)]
    print(f"| (reference) `import retentive.runner` | | {statistics.median(imports):.2f} | {max(imports):.2f} |")


if __name__ == "__main__":
    main()
