"""Typed, validated config: every value checked before torch is imported (one line per mistake)."""

from retentive.schema.check import check_config
from retentive.schema.rules import RULES, Rule

__all__ = ["RULES", "Rule", "check_config"]
