"""Synthetic head CT: axial slices of varying size, a hemorrhage as a bright blob inside the skull.

Example:
    >>> from competitions.synthetic.head_ct import draw_slices
    >>> import numpy as np
    >>> len(draw_slices(np.random.default_rng(0), np.array([0, 1])))
    2
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from kit.adapters.base import Adapter
from kit.synth.layout import write_kaggle_layout

__all__ = ["draw_slices", "synthesize"]


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
            cv2.ellipse(
                image,
                spot,
                (int(rng.uniform(0.05, 0.1) * w), int(rng.uniform(0.04, 0.08) * h)),
                float(rng.uniform(0, 180)),
                0,
                360,
                165,
                -1,
            )
        image = cv2.GaussianBlur(image, (0, 0), 1.2) + rng.normal(0, 5, (h, w))
        out.append(np.clip(image, 0, 255).astype(np.uint8))
    return out


def synthesize(adapter: Adapter, raw: Path, n_train: int, n_test: int, seed: int) -> None:
    """Write ``n_train`` + ``n_test`` synthetic images in ``adapter``'s layout under ``raw`` (``kit synth``)."""
    write_kaggle_layout(adapter, raw, draw_slices, n_train, n_test, seed, positive_rate=0.5)
