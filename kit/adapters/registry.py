"""The adapter registry: every competition adapter by name, found on first use.

Adapters come from these places, loaded once, on the first ``get_adapter`` or ``list_adapters``:

1. installed packages, through the entry-point group ``kit.adapters`` (``name = package.module:OBJECT``, the
   name being the adapter's): how a third-party package plugs in, and how kit's own are declared (setup.cfg);
2. every module of the top-level ``competitions`` package (but ``competitions.synthetic``) when it is importable:
   each module-level ``Adapter`` there counts. This is what works from a source tree that is not installed, such
   as the bundle a Kaggle notebook puts on ``sys.path``, so dropping a file into ``competitions/`` is enough;
3. declarative adapters (``kit.adapters.declarative``): every ``*.toml`` file in the ``competitions`` package's
   folder, then every file (or ``*.toml`` of every folder) named in the environment variable ``KIT_ADAPTERS``
   (``os.pathsep``-separated);
4. ``register_adapter(adapter)`` or ``register_adapter_file(path)`` (a TOML file) by hand, e.g. in a notebook.

The same adapter found twice (entry point and package) counts once; two different adapters with one name is an
error. This module imports no adapter at import time: the ``competitions`` package depends on kit, not the
reverse.

Example:
    >>> from kit.adapters.registry import get_adapter, list_adapters
    >>> "pcam" in list_adapters(), get_adapter("pcam").slug
    (True, 'histopathologic-cancer-detection')
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import pkgutil
from pathlib import Path

from kit.adapters.base import Adapter
from kit.adapters.declarative import load_adapter_toml
from kit.errors import KitError

__all__ = [
    "ENTRY_POINT_GROUP",
    "BUILTIN_PACKAGE",
    "ENV_VAR",
    "register_adapter",
    "register_adapter_file",
    "get_adapter",
    "list_adapters",
]

ENTRY_POINT_GROUP = "kit.adapters"
BUILTIN_PACKAGE = "competitions"
ENV_VAR = "KIT_ADAPTERS"  # TOML files or folders of them, os.pathsep-separated
_NOT_ADAPTERS = ("synthetic",)  # competitions.synthetic draws the images; it declares no adapter

_ADAPTERS: dict[str, Adapter] = {}
_SOURCES: dict[str, str] = {}  # name -> where it came from, for duplicate-name messages
_loaded = False


def register_adapter(adapter: Adapter) -> Adapter:
    """Add ``adapter`` under ``adapter.name``, after the discovered ones; returns it.

    Example:
        >>> import dataclasses
        >>> register_adapter(dataclasses.replace(get_adapter("pcam"), name="pcam-tiny")).name  # doctest: +SKIP
        'pcam-tiny'
    """
    _load()
    return _register(adapter, "register_adapter()")


def register_adapter_file(path) -> Adapter:
    """Add the declarative adapter of the TOML file ``path`` (``kit.adapters.declarative``); returns it.

    Example:
        >>> register_adapter_file("my_dataset.toml").name  # doctest: +SKIP
        'my-dataset'
    """
    _load()
    return _register(load_adapter_toml(path), f"file {path}")


def get_adapter(name: str) -> Adapter:
    """The adapter called ``name``; unknown names list the known ones."""
    _load()
    if name not in _ADAPTERS:
        raise KitError(
            f"unknown competition {name!r}; known: {', '.join(sorted(_ADAPTERS))}. Fix: use one of "
            f"these, or add an adapter (a module or a .toml file in competitions/, a .toml file named in "
            f"{ENV_VAR}, or a package declaring the {ENTRY_POINT_GROUP!r} entry-point group)."
        )
    return _ADAPTERS[name]


def list_adapters() -> list[str]:
    """Names of every adapter, sorted."""
    _load()
    return sorted(_ADAPTERS)


def _register(adapter, source: str) -> Adapter:
    if not isinstance(adapter, Adapter):
        raise KitError(
            f"{source}: expected a kit.adapters.base.Adapter, got {type(adapter).__name__}. "
            "Fix: point it at an Adapter(...) or FolderPerClassAdapter(...) object."
        )
    known = _ADAPTERS.get(adapter.name)
    if known is adapter:  # found twice, e.g. by its entry point and in the competitions package
        return adapter
    if known is not None:
        raise KitError(
            f"expected one adapter per name, got two named {adapter.name!r}: from "
            f"{_SOURCES[adapter.name]} and from {source}. Fix: rename one (Adapter(name=...)), or "
            "uninstall the package that brings the other."
        )
    _ADAPTERS[adapter.name] = adapter
    _SOURCES[adapter.name] = source
    return adapter


def _load() -> None:
    global _loaded
    if _loaded:
        return
    for entry in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        _register(_load_entry_point(entry), f"entry point {entry.name} = {entry.value}")
    for module_name in _builtin_modules():
        try:
            module = importlib.import_module(module_name)
        except Exception as e:  # any failure of a module we import is the module's, not ours: say which
            raise KitError(
                f"adapter module {module_name}: expected it to import, got {type(e).__name__}: {e}. "
                f"Fix: repair or remove {module_name.replace('.', '/')}.py."
            ) from e
        for value in vars(module).values():
            if isinstance(value, Adapter):
                _register(value, f"module {module_name}")
    for path in _toml_files():
        _register(load_adapter_toml(path), f"file {path}")
    _loaded = True  # only once everything loaded: after an error the next call reports it again


def _load_entry_point(entry):
    distribution = getattr(entry.dist, "name", None) or "the package declaring it"
    where = (
        f"adapter plugin {entry.name} = {entry.value} (entry-point group {ENTRY_POINT_GROUP!r}, from {distribution})"
    )
    try:
        adapter = entry.load()
    except Exception as e:  # a plugin may fail in any way while importing
        raise KitError(
            f"{where}: expected it to import, got {type(e).__name__}: {e}. Fix: install what it "
            f"needs, or `pip uninstall {distribution}`."
        ) from e
    if isinstance(adapter, Adapter) and adapter.name != entry.name:
        raise KitError(
            f"{where}: expected the entry-point name to be the adapter's name, got adapter "
            f"{adapter.name!r}. Fix: declare it as `{adapter.name} = {entry.value}`."
        )
    return adapter


def _builtin_modules() -> list[str]:
    """Modules of the ``competitions`` package that may declare adapters (none if it is not importable)."""
    if importlib.util.find_spec(BUILTIN_PACKAGE) is None:
        return []
    package = importlib.import_module(BUILTIN_PACKAGE)
    names = sorted(info.name for info in pkgutil.iter_modules(package.__path__))  # also inside a zip bundle
    return [f"{BUILTIN_PACKAGE}.{name}" for name in names if not name.startswith("_") and name not in _NOT_ADAPTERS]


def _toml_files() -> list[Path]:
    """The declarative adapters' files: ``competitions/*.toml``, then those ``KIT_ADAPTERS`` names, in order."""
    files: list[Path] = []
    if importlib.util.find_spec(BUILTIN_PACKAGE) is not None:
        for folder in importlib.import_module(BUILTIN_PACKAGE).__path__:
            if Path(folder).is_dir():
                files += sorted(Path(folder).glob("*.toml"))
    for entry in filter(None, os.environ.get(ENV_VAR, "").split(os.pathsep)):
        path = Path(entry).expanduser()
        if path.is_dir():
            files += sorted(path.glob("*.toml"))
        elif path.is_file():
            files.append(path)
        else:
            raise KitError(
                f"{ENV_VAR}: expected TOML files or folders of them, got {entry!r}, which does not exist. Fix: "
                f"correct {ENV_VAR} (paths separated by {os.pathsep!r}) or unset it."
            )
    return files
