"""Where kit reads and writes by default; every location can be overridden by an environment variable.

``KIT_DATA_DIR`` (default ``data``), ``KIT_RUNS_DIR`` (default ``runs``), ``KIT_SUBMISSIONS_DIR``
(default ``submissions``), all relative to the current directory unless absolute.

Example:
    >>> from kit.paths import default_store
    >>> default_store("pcam").name
    'pcam.h5'
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["data_dir", "runs_dir", "submissions_dir", "default_raw", "default_store"]


def data_dir() -> Path:
    return Path(os.environ.get("KIT_DATA_DIR", "data"))


def runs_dir() -> Path:
    return Path(os.environ.get("KIT_RUNS_DIR", "runs"))


def submissions_dir() -> Path:
    return Path(os.environ.get("KIT_SUBMISSIONS_DIR", "submissions"))


def default_raw(competition: str) -> Path:
    """Folder holding the competition's files exactly as Kaggle ships them."""
    return data_dir() / competition / "raw"


def default_store(competition: str) -> Path:
    return data_dir() / competition / f"{competition}.h5"
