"""Captum probes: attributions computed as callbacks during continual runs."""

from retentive.probes.attribution import PROBES, AttributionProbe, make_probe
from retentive.probes.callback import AttributionProbes, mask_share

__all__ = ["PROBES", "AttributionProbe", "AttributionProbes", "make_probe", "mask_share"]
