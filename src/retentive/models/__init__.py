"""Backbones and the backbone + heads network."""

from retentive.models.cnn import cnn_backbone
from retentive.models.continual_net import ContinualNet, build_net
from retentive.models.mlp import mlp_backbone

__all__ = ["ContinualNet", "build_net", "cnn_backbone", "mlp_backbone"]
