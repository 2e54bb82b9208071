"""Benchmarks that print one JSON line each: kit's figure next to a naive baseline measured in the same run.

Example:
    $ kit bench ingest --raw data/pcam/raw
    {"bench": "ingest", "images": 277483, "kit_images_per_s": ..., "pillow_images_per_s": ..., "ratio": ...}
"""
from __future__ import annotations

import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from kit.adapter import get_adapter
from kit.ingest import ingest
from kit.plan import plan_split

__all__ = ["bench_ingest"]


def _pillow_loop(paths: list[str]) -> float:
    from PIL import Image  # the naive baseline only; kit itself never decodes with Pillow

    started = time.perf_counter()
    for path in paths:
        np.asarray(Image.open(path))
    return len(paths) / (time.perf_counter() - started)


def bench_ingest(raw, competition: str = "pcam", workers: int | None = None, repeat: int = 3) -> dict:
    """Time kit's whole ingest (plan, parallel decode, HDF5 writes) against a one-process Pillow loop."""
    adapter = get_adapter(competition)
    paths = [p for split in ("train", "test") for p in plan_split(adapter, raw, split).paths]
    for path in paths:  # both contenders read from the page cache
        Path(path).read_bytes()
    pillow = _pillow_loop(paths)
    best = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeat):
            started = time.perf_counter()
            ingest(competition, raw, Path(tmp) / "bench.h5", workers=workers, force=True, progress=False)
            best = max(best, len(paths) / (time.perf_counter() - started))
        size = (Path(tmp) / "bench.h5").stat().st_size
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"bench": "ingest", "images": len(paths), "workers": workers or os.cpu_count(),
            "kit_images_per_s": round(best), "pillow_images_per_s": round(pillow), "ratio": round(best / pillow, 2),
            "store_mib": round(size / 2**20, 1), "peak_rss_mib": round(rss_mib), "best_of": repeat}
