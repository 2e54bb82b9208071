"""Chest X-ray pneumonia (Kaggle dataset paultimothymooney/chest-xray-pneumonia): one folder per class.

Files: ``chest_xray/train/{NORMAL,PNEUMONIA}/*.jpeg`` and the same under ``chest_xray/test``. Grayscale JPEGs of
many sizes (a few are saved as RGB); stored as 128x128 single-channel images (``--size`` to change), stretched
to the square as most published notebooks do. Label 1 = PNEUMONIA. A Kaggle dataset, not a competition: kit
writes the test predictions as a CSV but has nowhere to submit them.

Example:
    >>> from competitions.chest_xray import CHEST_XRAY
    >>> CHEST_XRAY.image_shape, CHEST_XRAY.positive_class
    ((128, 128, 1), 'PNEUMONIA')
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from kit.adapters.base import FolderPerClassAdapter, register_adapter
from kit.synth import write_class_folders

__all__ = ["CHEST_XRAY", "draw_radiographs"]


def draw_radiographs(rng: np.random.Generator, labels: np.ndarray) -> list[np.ndarray]:
    """Frontal chest films of varying size: bright body, two dark lungs; pneumonia adds hazy bright patches
    inside a lung. One in ten is returned as 3-channel gray, as some real files are."""
    out = []
    for label in labels:
        h, w = int(rng.integers(140, 260)), int(rng.integers(170, 320))
        image = np.full((h, w), 170 + rng.normal(0, 10), np.float32)
        lungs = [(0.32, 0.5), (0.68, 0.5)]
        for x, y in lungs:
            cv2.ellipse(image, (int(x * w), int(y * h)), (int(0.13 * w), int(0.3 * h)), 0, 0, 360, 60, -1)
        if label:
            for _ in range(int(rng.integers(2, 5))):
                x, y = lungs[int(rng.integers(0, 2))]
                centre = (int((x + rng.normal(0, 0.04)) * w), int((y + rng.normal(0, 0.12)) * h))
                cv2.circle(image, centre, int(min(h, w) * rng.uniform(0.05, 0.1)), 125, -1)
        image = cv2.GaussianBlur(image, (0, 0), 2.0) + rng.normal(0, 6, (h, w))
        image = np.clip(image, 0, 255).astype(np.uint8)
        out.append(np.repeat(image[:, :, None], 3, 2) if rng.random() < 0.1 else image)
    return out


def _synthesize(raw: Path, n_train: int, n_test: int, seed: int) -> None:
    write_class_folders(CHEST_XRAY, raw, draw_radiographs, n_train, n_test, seed, positive_rate=0.6)


CHEST_XRAY = register_adapter(
    FolderPerClassAdapter(
        name="chest-xray",
        slug="paultimothymooney/chest-xray-pneumonia",
        kind="dataset",
        train_dir="chest_xray/train",
        test_dir="chest_xray/test",
        labels_csv="",
        sample_submission_csv="",
        id_column="id",
        label_column="label",
        image_suffix="",
        image_format=None,
        image_shape=(128, 128, 1),
        metric="roc_auc",
        synthesize=_synthesize,
        fit="stretch",
        classes=("NORMAL", "PNEUMONIA"),
        positive_class="PNEUMONIA",
        # radiographs have an orientation (heart on the left): small shifts, zooms and rotations, no flips
        train_augment=(
            {"name": "Affine", "scale": [0.9, 1.1], "rotate": [-10, 10], "translate_percent": [-0.05, 0.05],
             "p": 0.7},
            {"name": "RandomBrightnessContrast", "brightness_limit": 0.15, "contrast_limit": 0.15, "p": 0.5},
        ),
    )
)
