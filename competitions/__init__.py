"""Competition adapters: one module per competition or dataset, holding only its ``Adapter(...)`` declaration.

The registry imports every module here (and every ``kit.adapters`` entry point of installed packages), so a new
file is all a new competition needs; its synthetic twin, which draws demo images, goes in ``synthetic/``.

Example:
    >>> from kit.adapters.registry import get_adapter
    >>> get_adapter("pcam").slug
    'histopathologic-cancer-detection'
"""
