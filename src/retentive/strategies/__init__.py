"""Continual-learning strategies."""

from retentive.strategies.agem import AGEM
from retentive.strategies.base import Strategy
from retentive.strategies.buffer import ReservoirBuffer
from retentive.strategies.der import DER, DERpp
from retentive.strategies.er import ER
from retentive.strategies.ewc import EWC, OnlineEWC
from retentive.strategies.gdumb import GDumb
from retentive.strategies.icarl import ICaRL
from retentive.strategies.importance import ImportanceStrategy
from retentive.strategies.joint import Joint
from retentive.strategies.l2 import L2
from retentive.strategies.lwf import LwF
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
from retentive.strategies.teacher import Teacher

__all__ = [
    "AGEM",
    "DER",
    "ER",
    "DERpp",
    "GDumb",
    "ICaRL",
    "ER",
    "EWC",
    "L2",
    "MAS",
    "SI",
    "ImportanceStrategy",
    "Joint",
    "LwF",
    "MomentumReversals",
    "Naive",
    "OnlineEWC",
    "RandomImportance",
    "ReservoirBuffer",
    "SignFlips",
    "Strategy",
    "Teacher",
    "WeightChange",
    "WeightMagnitude",
]
