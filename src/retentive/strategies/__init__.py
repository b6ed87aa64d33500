"""Continual-learning strategies."""

from retentive.strategies.base import Strategy
from retentive.strategies.joint import Joint
from retentive.strategies.naive import Naive

__all__ = ["Joint", "Naive", "Strategy"]
