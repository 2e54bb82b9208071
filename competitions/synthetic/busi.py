"""Synthetic BUSI: grayscale ultrasound frames with speckle; benign lesions round and smooth, malignant ones
irregular and spiky, normal frames without a lesion. In Kaggle's layout: ``Dataset_BUSI_with_GT/<class>/<class>
(k).png`` with ``<class> (k)_mask.png`` beside each image (and a second ``_mask_1.png`` for some), plus the optional
flat ``test/`` folder the Kaggle dataset lacks.

Example:
    >>> from competitions.synthetic.busi import draw_ultrasound
    >>> import numpy as np
    >>> images, masks = draw_ultrasound(np.random.default_rng(0), np.array([0, 1, 2]))
    >>> len(images), int(masks[2].max())
    (3, 0)
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from kit.adapters.base import Adapter
from kit.synth.generic import write_dataset
from kit.synth.layout import encode_image

__all__ = ["draw_ultrasound", "synthesize"]


def draw_ultrasound(rng: np.random.Generator, labels: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(images, lesion masks): speckled tissue bands, a dark lesion for benign (0, a smooth ellipse) and malignant
    (1, an irregular star-shaped blob); normal (2) frames have an empty mask."""
    images, masks = [], []
    for label in np.asarray(labels).astype(int):
        h, w = int(rng.integers(48, 72)), int(rng.integers(56, 88))
        rows = np.linspace(0, 1, h)[:, None]
        tissue = 90 + 50 * np.sin(rows * rng.uniform(6, 10)) + np.zeros((h, w))
        mask = np.zeros((h, w), np.uint8)
        centre = (int(w * rng.uniform(0.35, 0.65)), int(h * rng.uniform(0.4, 0.65)))
        r = min(h, w) * rng.uniform(0.18, 0.26)
        if label == 0:
            cv2.ellipse(mask, centre, (int(r * 1.3), int(r)), float(rng.uniform(-20, 20)), 0, 360, 255, -1)
        elif label == 1:
            angles = np.linspace(0, 2 * np.pi, 14, endpoint=False)
            radii = r * np.where(np.arange(14) % 2, 0.5, 1.3) * rng.uniform(0.8, 1.2, 14)
            points = np.stack([centre[0] + radii * np.cos(angles), centre[1] + radii * np.sin(angles)], 1)
            cv2.fillPoly(mask, [points.astype(np.int32)], 255)
        tissue[mask > 0] = 25
        speckle = rng.gamma(4.0, 0.25, (h, w))
        image = np.clip(cv2.GaussianBlur(tissue * speckle, (3, 3), 0.8), 0, 255).astype(np.uint8)
        images.append(image)
        masks.append(mask)
    return images, masks


def synthesize(adapter: Adapter, raw: Path, n_train: int, n_test: int, seed: int) -> None:
    """Write ``n_train`` labelled images with their masks + ``n_test`` test images under ``raw`` (``kit synth``)."""
    drawn: dict[str, np.ndarray] = {}  # file stem -> its mask, written beside the image afterwards

    def names(rng, labels, split):
        counts: dict[str, int] = {}
        out = []
        for label in labels:
            name = adapter.class_names[label] if split == "train" else "case"
            counts[name] = counts.get(name, 0) + 1
            out.append(f"{name} ({counts[name]})")  # "benign (1)": spaces and parentheses, as Kaggle's files
        return out

    def draw(rng, labels):
        images, masks = draw_ultrasound(rng, labels)
        drawn.update({len(drawn) + k: m for k, m in enumerate(masks)})
        return images

    written = write_dataset(adapter, raw, n_train, n_test, seed, draw=draw, ids=names, suffix=".png")
    for k, (_, file, _) in enumerate(written["train"]):
        mask = drawn[k]
        file.with_name(f"{file.stem}_mask.png").write_bytes(encode_image(mask, ".png"))
        if k % 4 == 1:  # some lesions have a second mask, as in the real dataset
            file.with_name(f"{file.stem}_mask_1.png").write_bytes(encode_image(mask[::-1].copy(), ".png"))
