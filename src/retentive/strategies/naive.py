"""Naive fine-tuning: train on each task in turn with no protection (the lower bound)."""

from retentive.strategies.base import Strategy


class Naive(Strategy):
    """Plain sequential fine-tuning."""
