"""Continual-learning strategies."""

from retentive.strategies.base import Strategy
from retentive.strategies.ewc import EWC, OnlineEWC
from retentive.strategies.importance import ImportanceStrategy
from retentive.strategies.joint import Joint
from retentive.strategies.l2 import L2
from retentive.strategies.mas import MAS
from retentive.strategies.naive import Naive
from retentive.strategies.seed_omegas import (
    MomentumReversals,
    RandomImportance,
    SignFlips,
    WeightChange,
    WeightMagnitude,
)
from retentive.strategies.si import SI

__all__ = [
    "EWC",
    "L2",
    "MAS",
    "SI",
    "ImportanceStrategy",
    "Joint",
    "MomentumReversals",
    "Naive",
    "OnlineEWC",
    "RandomImportance",
    "SignFlips",
    "Strategy",
    "WeightChange",
    "WeightMagnitude",
]
