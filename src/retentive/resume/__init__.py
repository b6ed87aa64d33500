"""Checkpoints that hold a whole run, resume from them, and stop cleanly on signals."""
