"""Synthetic datasets in a competition's exact Kaggle layout: the file writing, ids and tables.

A synthetic generator (``competitions.synthetic.<module>``) draws the images and calls one of the two writers,
one per built-in layout: a label table plus image folders (``write_kaggle_layout``) and one folder per class
(``write_class_folders``). The hidden test labels go to ``synth_test_labels.csv`` so demos can score a
submission. This module knows no registry: ``kit.synth.synthesize`` looks the adapter up.

Example:
    >>> from kit.synth.layout import write_kaggle_layout
    >>> write_kaggle_layout(adapter, "/tmp/demo", draw, n_train=64, n_test=16, seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from kit.adapters.base import Adapter
from kit.adapters.folder_per_class import FolderPerClassAdapter
from kit.errors import KitError
from kit.ingest import tiff

__all__ = ["write_kaggle_layout", "write_class_folders", "encode_image", "hex_ids", "SYNTH_TEST_LABELS", "Draw"]

SYNTH_TEST_LABELS = "synth_test_labels.csv"  # not part of Kaggle's layout
_BLOCK = 1024  # images drawn at once: bounds memory whatever N is

Draw = Callable[[np.random.Generator, np.ndarray], "list[np.ndarray] | np.ndarray"]


def hex_ids(rng: np.random.Generator, n: int) -> list[str]:
    """n distinct 40-hex-digit ids, like Kaggle's PCam file names."""
    ids = [rng.bytes(20).hex() for _ in range(n)]
    if len(set(ids)) != n:  # practically impossible, but duplicates would corrupt the dataset
        raise RuntimeError("id collision while drawing synthetic ids; use another seed")
    return ids


def encode_image(image: np.ndarray, suffix: str) -> bytes:
    """File bytes of an RGB or grayscale uint8 image in the format its suffix names (.tif: Kaggle's PCam TIFF)."""
    if suffix == ".tif":
        return tiff.encode_rgb(image)
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(suffix, image, [cv2.IMWRITE_JPEG_QUALITY, 92] if suffix in (".jpg", ".jpeg") else [])
    if not ok:
        raise KitError(
            f"expected an image OpenCV can encode as {suffix}, got shape {image.shape}. "
            "Fix: draw uint8 images of shape (H, W) or (H, W, 3)."
        )
    return data.tobytes()


def _draw_labels(rng, n_train: int, n_test: int, positive_rate: float, label_noise: float, min_positives: int):
    """True labels (to draw from) and the noisy written ones: annotations are imperfect, so no perfect score."""
    labels = (rng.random(n_train + n_test) < positive_rate).astype(np.int64)
    forced = min(2 * min_positives, n_train)
    labels[:forced] = np.arange(forced) % 2  # 0,1,0,1..: both classes present even in tiny sets
    noisy = np.where(rng.random(len(labels)) < label_noise, 1 - labels, labels)
    noisy[:forced] = labels[:forced]
    return labels, noisy


def _write_images(folder: Path, names: list[str], labels: np.ndarray, draw: Draw, rng) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(names), _BLOCK):
        stop = min(start + _BLOCK, len(names))
        for name, image in zip(names[start:stop], draw(rng, labels[start:stop])):
            (folder / name).write_bytes(encode_image(image, Path(name).suffix))


def write_kaggle_layout(
    adapter: Adapter,
    raw: Path,
    draw: Draw,
    n_train: int,
    n_test: int,
    seed: int,
    positive_rate: float = 0.4,
    label_noise: float = 0.03,
    min_positives: int = 1,
    groups: Callable[[np.random.Generator, int], list[str]] | None = None,
) -> None:
    """Write train/test images drawn by ``draw(rng, labels) -> uint8 images`` plus the adapter's tables.

    ``groups(rng, n)`` gives the train rows' ``adapter.group_column`` values (e.g. patient ids).
    """
    _check_counts(n_train, n_test)
    raw = Path(raw)
    rng = np.random.default_rng(seed)
    ids = hex_ids(rng, n_train + n_test)
    labels, noisy = _draw_labels(rng, n_train, n_test, positive_rate, label_noise, min_positives)
    suffix = adapter.image_suffix
    _write_images(raw / adapter.train_dir, [f"{i}{suffix}" for i in ids[:n_train]], labels[:n_train], draw, rng)
    _write_images(raw / adapter.test_dir, [f"{i}{suffix}" for i in ids[n_train:]], labels[n_train:], draw, rng)
    extra = {adapter.group_column: groups(rng, n_train)} if groups and adapter.group_column else {}
    sep = adapter.csv_sep
    _write_csv(
        raw / adapter.labels_csv,
        sep,
        adapter.id_column,
        ids[:n_train],
        {adapter.label_column: noisy[:n_train].tolist(), **extra},
    )
    _write_csv(
        raw / adapter.sample_submission_csv, sep, adapter.id_column, ids[n_train:], {adapter.label_column: [0] * n_test}
    )
    _write_csv(raw / SYNTH_TEST_LABELS, ",", "id", ids[n_train:], {"label": noisy[n_train:].tolist()})


def write_class_folders(
    adapter: FolderPerClassAdapter,
    raw: Path,
    draw: Draw,
    n_train: int,
    n_test: int,
    seed: int,
    positive_rate: float = 0.4,
    label_noise: float = 0.03,
    suffix: str = ".jpeg",
):
    """Write ``<train_dir>/<CLASS>/<id><suffix>`` and the same for the test split (classes by the noisy label)."""
    _check_counts(n_train, n_test)
    raw = Path(raw)
    rng = np.random.default_rng(seed)
    ids = [f"img-{k:05d}" for k in rng.permutation(n_train + n_test)]
    labels, noisy = _draw_labels(rng, n_train, n_test, positive_rate, label_noise, 1)
    negative = next(c for c in adapter.classes if c != adapter.positive_class)
    for split, lo, hi in (("train", 0, n_train), ("test", n_train, n_train + n_test)):
        for label, cls in ((1, adapter.positive_class), (0, negative)):
            rows = [k for k in range(lo, hi) if noisy[k] == label]
            _write_images(
                raw / adapter.split_dir(split) / cls, [f"{ids[k]}{suffix}" for k in rows], labels[rows], draw, rng
            )
    _write_csv(raw / SYNTH_TEST_LABELS, ",", "id", ids[n_train:], {"label": noisy[n_train:].tolist()})


def _check_counts(n_train: int, n_test: int) -> None:
    if n_train < 2 or n_test < 1:
        raise KitError(
            f"expected --train >= 2 and --test >= 1, got --train {n_train} --test {n_test}. "
            "Fix: ask for at least two train images and one test image."
        )


def _write_csv(path: Path, sep: str, id_column: str, ids: list[str], columns: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, delimiter=sep)
        writer.writerow([id_column, *columns])
        writer.writerows(zip(ids, *columns.values()))
