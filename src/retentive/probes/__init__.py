"""Captum probes (attributions after every task) and model inspection (kernels, activation maximisation)."""

from retentive.probes.attribution import PROBES, AttributionProbe, Explanation, make_probe
from retentive.probes.callback import AttributionProbes, mask_share

__all__ = ["PROBES", "AttributionProbe", "AttributionProbes", "Explanation", "make_probe", "mask_share"]
