"""Synthetic datasets in a competition's exact Kaggle layout: the embedded default for demos and tests.

The adapter draws the images (``adapter.synthesize``); this module owns the file writing, ids and CSVs.

Example:
    >>> from kit.synth import synthesize
    >>> synthesize("pcam", "/tmp/pcam-demo", n_train=64, n_test=16, seed=0)  # doctest: +SKIP
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable

import numpy as np

from kit import tiff
from kit.adapter import Adapter, get_adapter
from kit.errors import KitError

__all__ = ["synthesize", "write_kaggle_layout", "hex_ids", "SYNTH_TEST_LABELS"]

# Not part of Kaggle's layout: the hidden test labels, so demos can score a synthetic submission.
SYNTH_TEST_LABELS = "synth_test_labels.csv"
_BLOCK = 1024  # images drawn at once: bounds memory whatever N is


def hex_ids(rng: np.random.Generator, n: int) -> list[str]:
    """n distinct 40-hex-digit ids, like Kaggle's PCam file names."""
    ids = [rng.bytes(20).hex() for _ in range(n)]
    if len(set(ids)) != n:  # practically impossible, but duplicates would corrupt the dataset
        raise RuntimeError("id collision while drawing synthetic ids; use another seed")
    return ids


def write_kaggle_layout(
    adapter: Adapter,
    raw: Path,
    draw: Callable[[np.random.Generator, np.ndarray], np.ndarray],
    n_train: int,
    n_test: int,
    seed: int,
    positive_rate: float = 0.4,
    label_noise: float = 0.03,
) -> None:
    """Write train/test images drawn by ``draw(rng, labels) -> uint8 (N,H,W,3)`` plus the two CSVs.

    ``label_noise`` of the written labels are flipped after drawing, as in real annotations, so no model can
    reach a perfect score.
    """
    if n_train < 2 or n_test < 1:
        raise KitError(f"expected --train >= 2 and --test >= 1, got --train {n_train} --test {n_test}.")
    raw = Path(raw)
    rng = np.random.default_rng(seed)
    ids = hex_ids(rng, n_train + n_test)
    labels = (rng.random(n_train + n_test) < positive_rate).astype(np.int64)
    labels[:2] = (0, 1)  # both classes present, so AUC is defined even for tiny sets
    noisy = np.where(rng.random(len(labels)) < label_noise, 1 - labels, labels)
    noisy[:2] = (0, 1)
    for split, lo, hi in (("train", 0, n_train), ("test", n_train, n_train + n_test)):
        folder = raw / (adapter.train_dir if split == "train" else adapter.test_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for start in range(lo, hi, _BLOCK):
            stop = min(start + _BLOCK, hi)
            for image_id, image in zip(ids[start:stop], draw(rng, labels[start:stop])):
                (folder / f"{image_id}{adapter.image_suffix}").write_bytes(tiff.encode_rgb(image))
    _write_csv(raw / adapter.labels_csv, adapter, ids[:n_train], noisy[:n_train])
    _write_csv(raw / adapter.sample_submission_csv, adapter, ids[n_train:], np.zeros(n_test, np.int64))
    _write_csv(raw / SYNTH_TEST_LABELS, adapter, ids[n_train:], noisy[n_train:])


def _write_csv(path: Path, adapter: Adapter, ids: list[str], labels: np.ndarray) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([adapter.id_column, adapter.label_column])
        writer.writerows(zip(ids, labels.tolist()))


def synthesize(competition: str, raw, n_train: int = 2000, n_test: int = 500, seed: int = 0) -> Path:
    """Write a deterministic synthetic dataset for ``competition`` into ``raw``; returns ``raw``."""
    raw = Path(raw)
    get_adapter(competition).synthesize(raw, n_train, n_test, seed)
    return raw

