"""Backbone registry and the models kit trains: see ``registry.create_model``.

Example:
    >>> from kit.models import list_backbones
    >>> list_backbones()[:3]
    ['compact_cnn', 'densenet169', 'efficientnet_b0']
"""

from kit.models import applications, scratch  # noqa: F401  (registers the backbones)
from kit.models.registry import create_model, is_pretrainable, list_backbones, register_backbone, set_backbone_trainable

__all__ = ["register_backbone", "list_backbones", "create_model", "set_backbone_trainable", "is_pretrainable"]
