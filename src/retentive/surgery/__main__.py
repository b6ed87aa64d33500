"""`python -m retentive.surgery <run dir> [options]` (see retentive.surgery.cli)."""

from retentive.surgery.cli import cli

if __name__ == "__main__":
    cli()
