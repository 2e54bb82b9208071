"""Files written whole or not at all: a reader never sees half of one, even after kill -9.

Each write goes to a private temporary name beside the target (the process id keeps two writers apart) and is
then renamed over it, which POSIX makes atomic.

Example:
    >>> write_json("runs/pcam/x/metrics.json", {"oof_score": 0.95})  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

__all__ = ["atomic_write", "write_json"]


def atomic_write(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path, data) -> None:
    """Write ``data`` as indented JSON atomically; numpy scalars and arrays and paths become plain values."""
    atomic_write(path, (json.dumps(data, indent=2, default=_plain) + "\n").encode())


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
