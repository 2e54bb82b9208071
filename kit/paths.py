"""Where kit reads and writes by default: locally, or inside a Kaggle notebook; every location overridable.

Locally: ``data/`` (raw downloads under ``data/<competition>/raw``, stores), ``runs/`` and ``submissions/``,
relative to the current directory. Inside a Kaggle notebook (detected by the kernel's ``KAGGLE_KERNEL_RUN_TYPE``
variable or a ``/kaggle/input`` folder) raw files are read from ``/kaggle/input/<slug>`` (read-only) and
everything kit writes goes under ``/kaggle/working``. Overrides, strongest first: ``KIT_DATA_DIR``,
``KIT_RUNS_DIR``, ``KIT_SUBMISSIONS_DIR``, ``KIT_RAW_DIR`` (one competition's raw folder); ``KIT_KAGGLE_ROOT``
points at another ``/kaggle`` tree (tests use a fake one) and ``KIT_KAGGLE=0`` turns the detection off.

Example:
    >>> from kit.paths import default_store
    >>> default_store("pcam").name
    'pcam.h5'
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "kaggle_root",
    "working_dir",
    "data_dir",
    "runs_dir",
    "submissions_dir",
    "default_raw",
    "default_store",
    "keep_library_caches_in",
]


def kaggle_root() -> Path | None:
    """The Kaggle notebook tree (``/kaggle``) when running inside one, else None."""
    if os.environ.get("KIT_KAGGLE") == "0":
        return None
    if os.environ.get("KIT_KAGGLE_ROOT"):
        return Path(os.environ["KIT_KAGGLE_ROOT"])
    if os.environ.get("KAGGLE_KERNEL_RUN_TYPE") or Path("/kaggle/input").is_dir():
        return Path("/kaggle")
    return None


def working_dir() -> Path:
    """Where kit writes: ``/kaggle/working`` in a Kaggle notebook, else the current directory."""
    root = kaggle_root()
    return root / "working" if root is not None else Path(".")


def keep_library_caches_in(working: Path) -> None:
    """Point Keras' and matplotlib's settings and font caches (else under $HOME) into ``working``, so in a notebook
    everything kit causes to be written stays in the working folder. Only effective before they are imported."""
    os.environ.setdefault("KERAS_HOME", str(Path(working) / ".cache" / "keras"))
    os.environ.setdefault("MPLCONFIGDIR", str(Path(working) / ".cache" / "matplotlib"))


def _under_working(variable: str, name: str) -> Path:
    if os.environ.get(variable):
        return Path(os.environ[variable])
    root = kaggle_root()
    return root / "working" / name if root is not None else Path(name)


def data_dir() -> Path:
    return _under_working("KIT_DATA_DIR", "data")


def runs_dir() -> Path:
    return _under_working("KIT_RUNS_DIR", "runs")


def submissions_dir() -> Path:
    return _under_working("KIT_SUBMISSIONS_DIR", "submissions")


def default_raw(competition: str) -> Path:
    """Folder holding the competition's files exactly as Kaggle ships them (on Kaggle: the attached input)."""
    if os.environ.get("KIT_RAW_DIR"):
        return Path(os.environ["KIT_RAW_DIR"])
    root = kaggle_root()
    if root is not None:
        from kit.adapters.registry import get_adapter

        # competitions mount at /kaggle/input/<slug>, datasets at /kaggle/input/<dataset name>
        return root / "input" / get_adapter(competition).slug.rsplit("/", 1)[-1]
    return data_dir() / competition / "raw"


def default_store(competition: str) -> Path:
    return data_dir() / competition / f"{competition}.h5"
