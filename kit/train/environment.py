"""env.json's contents (``kit.run.EnvRecord``): versions, git commit, device and precision, enough to tell two
runs' conditions apart.

Example:
    >>> from kit.train.device import detect_device
    >>> environment(detect_device(), "float32", "data/pcam/pcam.h5", None).precision  # doctest: +SKIP
    'float32'
"""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

import kit
from kit.run import EnvRecord

__all__ = ["environment"]

PACKAGES = (
    "keras",
    "tensorflow",
    "jax",
    "albumentations",
    "numpy",
    "h5py",
    "scikit-learn",
    "iterative-stratification",
    "opencv-python-headless",
)


def environment(device, precision: str, store, max_minutes, image_shape=None) -> EnvRecord:
    """What ``RunFolder.write_env`` stores: package versions, git commit, device, precision, store (and its image
    shape), budget."""
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return EnvRecord(
        kit_version=kit.__version__,
        git_commit=_git_commit(),
        python=platform.python_version(),
        platform=platform.platform(),
        versions=versions,
        backend=device.backend,
        device={"kind": device.kind, "count": device.count, "names": list(device.names), "workers": device.workers},
        precision=precision,
        store=str(store),
        image_shape=None if image_shape is None else [int(v) for v in image_shape],
        max_minutes=max_minutes,
    )


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(kit.__file__).parent, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None
