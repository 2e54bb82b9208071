"""Head CT hemorrhage (Kaggle dataset felipekitamura/head-ct-hemorrhage) as an image folder plus a label CSV.

Layout: ``train/<id>.png`` with ``labels.csv`` (``id;hemorrhage``, semicolon-separated) and ``test/<id>.png``
with ``test.csv`` (``id``). Grayscale PNG slices of varying size, stored as 128x128 single-channel images,
letterboxed (``fit="pad"``) so the whole skull is kept. Label 1 = hemorrhage. This adapter is also the
template for any "folder of images + CSV of labels" dataset: change the folders, columns and separator.

Example:
    >>> from competitions.head_ct import HEAD_CT
    >>> HEAD_CT.csv_sep, HEAD_CT.label_column
    (';', 'hemorrhage')
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from kit.adapters.base import Adapter, register_adapter
from kit.synth import write_kaggle_layout

__all__ = ["HEAD_CT", "draw_slices"]


def draw_slices(rng: np.random.Generator, labels: np.ndarray) -> list[np.ndarray]:
    """Axial slices of varying size: a bright skull ring around grey brain; a hemorrhage is a bright blob
    inside the skull."""
    out = []
    for label in labels:
        h, w = int(rng.integers(120, 240)), int(rng.integers(120, 240))
        image = np.full((h, w), 15, np.float32)
        centre, axes = (w // 2, h // 2), (int(0.4 * w), int(0.45 * h))
        cv2.ellipse(image, centre, axes, 0, 0, 360, 235, -1)
        cv2.ellipse(image, centre, (axes[0] - 6, axes[1] - 6), 0, 0, 360, 95 + rng.normal(0, 6), -1)
        if label:
            spot = (centre[0] + int(rng.normal(0, 0.15 * w)), centre[1] + int(rng.normal(0, 0.15 * h)))
            cv2.ellipse(image, spot, (int(rng.uniform(0.05, 0.1) * w), int(rng.uniform(0.04, 0.08) * h)),
                        float(rng.uniform(0, 180)), 0, 360, 165, -1)
        image = cv2.GaussianBlur(image, (0, 0), 1.2) + rng.normal(0, 5, (h, w))
        out.append(np.clip(image, 0, 255).astype(np.uint8))
    return out


def _synthesize(raw: Path, n_train: int, n_test: int, seed: int) -> None:
    write_kaggle_layout(HEAD_CT, raw, draw_slices, n_train, n_test, seed, positive_rate=0.5)


HEAD_CT = register_adapter(
    Adapter(
        name="head-ct",
        slug="felipekitamura/head-ct-hemorrhage",
        kind="dataset",
        train_dir="train",
        test_dir="test",
        labels_csv="labels.csv",
        sample_submission_csv="test.csv",
        id_column="id",
        label_column="hemorrhage",
        image_suffix=".png",
        image_format=None,
        image_shape=(128, 128, 1),
        metric="roc_auc",
        synthesize=_synthesize,
        csv_sep=";",
        fit="pad",
        # left and right are interchangeable in an axial slice; patients lie slightly rotated
        train_augment=(
            {"name": "HorizontalFlip", "p": 0.5},
            {"name": "Affine", "rotate": [-15, 15], "scale": [0.95, 1.05], "p": 0.7},
            {"name": "RandomBrightnessContrast", "brightness_limit": 0.1, "contrast_limit": 0.1, "p": 0.5},
        ),
    )
)
