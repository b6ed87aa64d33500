"""A run directory holds one run: refuse to overwrite it, and find what resuming it needs."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from retentive.errors import ConfigError

RUN_FILES = ("results.json", "metrics.csv", "checkpoints/last.pt")

#: top-level keys a resumed run may change: where and how it reports and runs, not what it computes
RESUME_MAY_CHANGE = ("resume", "logger", "callbacks", "probes", "drift", "paths", "trainer", "name", "tags", "hydra",
                     "checkpoint")


def check_fresh(output_dir: str | Path) -> None:
    """One line if `output_dir` already holds a run (instead of silently overwriting it)."""
    found = [name for name in RUN_FILES if (Path(output_dir) / name).exists()]
    if found:
        raise ConfigError("hydra.run.dir", f"{output_dir} already holds a run ({found[0]})",
                          f"continue it with resume={output_dir}, or choose another hydra.run.dir")


def resume_checkpoint(run_dir: str | Path) -> Path:
    """The checkpoint to continue `run_dir` from, or one line saying why there is none."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError("resume", f"{run_dir} is not a run directory", "pass the run's output dir (outputs/<date>/<time>)")
    last = run_dir / "checkpoints" / "last.pt"
    if not last.is_file():
        raise ConfigError("resume", f"{run_dir} has no checkpoints/last.pt",
                          "the run stopped before its first epoch ended; start it again")
    return last


def resume_argv(argv: list[str]) -> list[str]:
    """Command-line overrides for `resume=<dir>`: the run's saved overrides (`.hydra/overrides.yaml`),
    then the ones given now (later wins), then `hydra.run.dir=<dir>` so the run continues in place."""
    given = [a for a in argv if a.startswith("resume=")]
    if not given:
        return argv
    run_dir = Path(given[-1].split("=", 1)[1])
    resume_checkpoint(run_dir)
    saved_file = run_dir / ".hydra" / "overrides.yaml"
    saved = [str(o) for o in OmegaConf.load(saved_file)] if saved_file.is_file() else []
    keep = [o for o in saved if not o.startswith(("resume=", "hydra.run.dir="))]
    return [*keep, *[a for a in argv if not a.startswith("hydra.run.dir=")], f"hydra.run.dir={run_dir}"]


def check_resumable_config(saved: DictConfig, current: DictConfig) -> None:
    """The resumed run must compute the same thing: one line naming the first key that differs."""
    old = OmegaConf.to_container(saved, resolve=False)
    new = OmegaConf.to_container(current, resolve=True)
    for key in sorted(old):  # keys added since the run started take their defaults (see _first_difference)
        if key in RESUME_MAY_CHANGE:
            continue
        difference = _first_difference(old.get(key), new.get(key), key)
        if difference:
            raise ConfigError(difference[0], f"is {difference[2]!r} now but {difference[1]!r} in the run being resumed",
                              "resume with the run's own overrides, or with only resume=<run dir>")


def _first_difference(old: object, new: object, path: str) -> tuple[str, object, object] | None:
    if isinstance(old, dict) and isinstance(new, dict):
        # a key the saved config lacks was added to retentive after the run started: new keys default to
        # the old behaviour (e.g. model.init=default), so a run started before an upgrade still resumes
        for key in sorted(old, key=str):
            found = _first_difference(old.get(key), new.get(key), f"{path}.{key}")
            if found:
                return found
        return None
    return None if old == new else (path, old, new)
