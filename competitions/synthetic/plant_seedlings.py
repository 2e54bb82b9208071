"""Synthetic Plant Seedlings: green seedlings on brown soil seen from above, the species in the leaves' number,
length, width and shade; in Kaggle's layout (``train/<species with spaces>/<hex>.png``, a flat ``test/``,
``sample_submission.csv`` ``file,species`` in an order that is not sorted).

Example:
    >>> from competitions.synthetic.plant_seedlings import draw_seedlings
    >>> import numpy as np
    >>> len(draw_seedlings(np.random.default_rng(0), np.array([0, 11])))
    2
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from kit.adapters.base import Adapter
from kit.synth.generic import write_dataset

__all__ = ["draw_seedlings", "synthesize"]


def draw_seedlings(rng: np.random.Generator, labels: np.ndarray) -> list[np.ndarray]:
    """Square-ish RGB photos (48 to 80 px): soil texture and one seedling whose leaf count (2 to 6), leaf length,
    width and green follow the species index."""
    out = []
    for label in np.asarray(labels).astype(int):
        side = int(rng.integers(48, 80))
        h, w = side, side + int(rng.integers(-4, 5))
        soil = np.array([105, 80, 60]) + rng.normal(0, 8, 3)
        image = np.clip(soil + rng.normal(0, 10, (h, w, 3)), 0, 255).astype(np.uint8)
        leaves, length = 2 + label % 5, side * (0.18 + 0.025 * (label % 6))
        width = max(1, int(length * (0.15 + 0.07 * (label % 4))))
        green = (int(40 + 9 * label), int(150 + 6 * (label % 5)), int(40 + 4 * (label % 3)))
        centre = np.array([w / 2, h / 2]) + rng.normal(0, side / 12, 2)
        start = rng.uniform(0, 2 * np.pi)
        for k in range(leaves):
            angle = start + 2 * np.pi * k / leaves + rng.normal(0, 0.1)
            tip = centre + 0.5 * length * np.array([np.cos(angle), np.sin(angle)])
            axes = (max(1, int(length / 2)), width)
            centre_xy = (int(tip[0]), int(tip[1]))
            cv2.ellipse(image, centre_xy, axes, float(np.degrees(angle)), 0, 360, green, -1)
        out.append(cv2.GaussianBlur(image, (3, 3), 0.7))
    return out


def _file_ids(rng: np.random.Generator, labels: np.ndarray, split: str) -> list[str]:
    return [rng.bytes(5).hex()[:9] for _ in labels]  # "0021e90e4": 9 hex digits, as Kaggle's files


def synthesize(adapter: Adapter, raw: Path, n_train: int, n_test: int, seed: int) -> None:
    """Write ``n_train`` + ``n_test`` synthetic images in ``adapter``'s layout under ``raw`` (``kit synth``)."""
    write_dataset(adapter, raw, n_train, n_test, seed, draw=draw_seedlings, ids=_file_ids, suffix=".png")
