"""Explanation penalties (right for the right reasons): RRR, CDEP, CAM loss."""

from retentive.explanations.base import ExplanationLoss
from retentive.explanations.camloss import CAMLoss
from retentive.explanations.cdep import CDEP
from retentive.explanations.rrr import RRR

__all__ = ["CAMLoss", "CDEP", "RRR", "ExplanationLoss"]
