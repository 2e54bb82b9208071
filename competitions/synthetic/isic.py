"""Synthetic SIIM-ISIC: skin photos of varying size, melanomas irregular and darker, several per patient.

Example:
    >>> from competitions.synthetic.isic import draw_lesions
    >>> import numpy as np
    >>> len(draw_lesions(np.random.default_rng(0), np.array([0, 1])))
    2
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from kit.adapters.base import Adapter
from kit.synth.layout import write_kaggle_layout

__all__ = ["draw_lesions", "synthesize"]


def draw_lesions(rng: np.random.Generator, labels: np.ndarray) -> list[np.ndarray]:
    """Skin photos of varying size with a lesion near the centre: benign ones round and evenly brown,
    melanomas irregular (several lobes), darker and with blue-grey patches."""
    out = []
    for label in labels:
        h, w = int(rng.integers(150, 300)), int(rng.integers(180, 380))
        skin = np.array([215, 170, 150]) + rng.normal(0, 12, 3)
        texture = cv2.resize(rng.normal(0, 1, (8, 8, 3)).astype(np.float32), (w, h))
        image = np.clip(skin + 10 * texture, 0, 255).astype(np.uint8)
        centre = np.array([w / 2, h / 2]) + rng.normal(0, min(h, w) / 20, 2)
        radius = min(h, w) * rng.uniform(0.12, 0.25)
        brown = np.array([125, 85, 60]) + rng.normal(0, 10, 3)
        lobes = int(rng.integers(3, 6)) if label else 1
        for _ in range(lobes):
            offset = rng.normal(0, radius * 0.35, 2) if label else np.zeros(2)
            _ellipse(image, centre + offset, radius * rng.uniform(0.6, 1.0), brown * (0.75 if label else 1.0), rng)
        if label:
            for _ in range(int(rng.integers(1, 4))):
                spot = centre + rng.normal(0, radius * 0.3, 2)
                _ellipse(image, spot, radius * rng.uniform(0.15, 0.3), np.array([95, 100, 125]), rng)
        image = cv2.GaussianBlur(image, (5, 5), 1.2)
        out.append(np.clip(image + rng.normal(0, 5, image.shape), 0, 255).astype(np.uint8))
    return out


def _ellipse(image, centre, radius, colour, rng) -> None:
    axes = (max(1, int(radius)), max(1, int(radius * rng.uniform(0.7, 1.0))))
    cv2.ellipse(
        image,
        tuple(int(c) for c in centre),
        axes,
        float(rng.uniform(0, 180)),
        0,
        360,
        tuple(float(c) for c in np.clip(colour, 0, 255)),
        -1,
    )


def _patients(rng: np.random.Generator, n: int) -> list[str]:
    """Patient ids for n images: 1 to 8 images per patient, as in the real data."""
    owners = []
    while len(owners) < n:
        owners += [f"IP_{len(owners):07d}"] * int(rng.integers(1, 9))
    return [owners[k] for k in rng.permutation(n)]


def synthesize(adapter: Adapter, raw: Path, n_train: int, n_test: int, seed: int) -> None:
    """Write ``n_train`` + ``n_test`` synthetic images in ``adapter``'s layout under ``raw`` (``kit synth``)."""
    # 6% positives (the real rate is ~1.8%): tiny test sets still get positives in every fold
    write_kaggle_layout(
        adapter, raw, draw_lesions, n_train, n_test, seed, positive_rate=0.06, min_positives=4, groups=_patients
    )
