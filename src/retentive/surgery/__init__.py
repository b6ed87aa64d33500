"""Importance-guided surgery: replace the p least (or most) important weights and re-evaluate.

`python -m retentive.surgery <run dir>` (see docs/surgery.md). One idea per file:
importances.py (which importances a run has or can compute: the rule), selection.py (ranking with
seeded tie-breaks, model-/layer-wise masks), replace.py (zero or N(0, std(w)/10)), sweep.py (the
grid over importances, settings and p), plot.py (loss and accuracy against p), cli.py (options,
checks before work, files written).
"""
