"""Entry point: `python -m retentive.train [overrides]` (see conf/train.yaml)."""

from __future__ import annotations

import logging
import os
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from retentive.cli_checks import check_group_overrides
from retentive.config import CONF_DIR
from retentive.errors import ConfigError
from retentive.logs import silence_known_warnings

log = logging.getLogger("retentive")

silence_known_warnings()



@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Train one continual sequence; returns `optimized_metric` (default val_ACC, from the validation
    split) — the value Hydra sweepers optimise, so hyperparameters are never chosen on test data."""
    from lightning.pytorch.utilities import rank_zero_only

    from retentive.config_tree import save_config_tree
    from retentive.logs import quiet_lightning
    from retentive.report import report_after_run
    from retentive.resume.checkpoint import load_checkpoint
    from retentive.resume.signals import RunInterrupted
    from retentive.runner import run
    from retentive.storage.run_dir import check_fresh, resume_checkpoint

    quiet_lightning()
    silence_known_warnings()  # again: launcher workers (joblib's loky) start with fresh warning filters
    output_dir = HydraConfig.get().runtime.output_dir
    try:
        resume_state = None
        if cfg.get("resume"):
            resume_state = load_checkpoint(resume_checkpoint(cfg.resume))
        elif os.environ.get("LOCAL_RANK", "0") == "0":  # DDP children join the run rank 0 started
            check_fresh(output_dir)
            save_config_tree(cfg, output_dir)
        try:
            summary = run(cfg, output_dir, resume_state)
        finally:  # report.html for every run that wrote results: complete, failed or interrupted
            if rank_zero_only.rank == 0:
                report_after_run(output_dir)
    except ConfigError as error:
        _fail(error)
    except RunInterrupted as stop:
        if rank_zero_only.rank == 0:
            print(f"interrupted by {stop.signal_name}: results so far in {output_dir}; continue with "
                  f"python -m retentive.train resume={output_dir}", file=sys.stderr)
        _exit_now(stop.exit_code)
    objective = summary.get(cfg.get("optimized_metric") or "val_ACC")
    if rank_zero_only.rank != 0:
        return objective
    log.info("ACC=%.4f  outputs in %s", summary.get("ACC", float("nan")), output_dir)
    print(f"results: {output_dir}/results.json  plots: {output_dir}/accuracy_curves.png, accuracy_matrix.png"
          f"  report: {output_dir}/report.html")
    return objective


def _exit_now(code: int) -> None:
    """Exit with `code` at once after a signal: results, checkpoint and loggers are already written
    and flushed, and skipping interpreter teardown avoids a native extension writing to the closed
    standard streams during it (seen once as an abort, exit -6, instead of 143)."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _fail(error: ConfigError) -> None:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)


def cli() -> None:
    """Check group choices first (one clear line), expand `resume=<run dir>` into that run's
    overrides, check the composed config against the schema (before torch is imported), then hand
    over to Hydra."""
    from retentive.schema.preflight import preflight
    from retentive.storage.run_dir import resume_argv

    try:
        check_group_overrides(sys.argv[1:], CONF_DIR)
        sys.argv = [sys.argv[0], *resume_argv(sys.argv[1:])]
        preflight(sys.argv[1:])
    except ConfigError as error:
        _fail(error)
    main()


if __name__ == "__main__":
    cli()
