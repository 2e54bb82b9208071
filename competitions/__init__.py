"""Competition adapters. Importing this package registers every adapter in it.

Example:
    >>> import competitions
    >>> competitions.get("pcam").slug
    'histopathologic-cancer-detection'
"""
from kit.adapters.base import get_adapter as get, list_adapters

from competitions import chest_xray, head_ct, isic, pcam  # noqa: F401  (register on import)

__all__ = ["get", "list_adapters"]
