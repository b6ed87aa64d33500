"""Provenance of published-vs-ours numbers: docs/reproductions.csv is the one source of every
reproduction row; the tables in docs/reproductions.md are generated from it.

    python -m retentive.reproductions collect <run dirs...> --table T --method M [...]   # runs -> a CSV row
    python -m retentive.reproductions render                                          # CSV -> doc tables
    python -m retentive.reproductions check                                           # exit 1 if stale
"""

from retentive.reproductions.table import COLUMNS, judge, read_rows, write_rows

__all__ = ["COLUMNS", "judge", "read_rows", "write_rows"]
