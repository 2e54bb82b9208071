"""Synthetic chest X-rays: grayscale films of varying size, pneumonia as hazy patches in a lung.

Example:
    >>> from competitions.synthetic.chest_xray import draw_radiographs
    >>> import numpy as np
    >>> len(draw_radiographs(np.random.default_rng(0), np.array([0, 1])))
    2
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from kit.adapters.base import Adapter
from kit.synth.layout import write_class_folders

__all__ = ["draw_radiographs", "synthesize"]


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


def synthesize(adapter: Adapter, raw: Path, n_train: int, n_test: int, seed: int) -> None:
    """Write ``n_train`` + ``n_test`` synthetic images in ``adapter``'s layout under ``raw`` (``kit synth``)."""
    write_class_folders(adapter, raw, draw_radiographs, n_train, n_test, seed, positive_rate=0.6)
