"""Pages of the docs site generated from the code and `conf/` at build time, so they cannot go stale."""
