"""Synthetic PCam: H&E-like 96x96 patches whose label lives in the centre 32x32, as in the real data.

Example:
    >>> from competitions.synthetic.pcam import draw_patches
    >>> import numpy as np
    >>> len(draw_patches(np.random.default_rng(0), np.array([0, 1])))
    2
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from kit.adapters.base import Adapter
from kit.synth.layout import write_kaggle_layout

__all__ = ["draw_patches", "synthesize"]


_SIZE = 96
_CENTRE = slice(32, 64)


def draw_patches(rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    """H&E-like patches: pink stroma, small purple nuclei everywhere, a cluster of large dark nuclei in the
    centre 32x32 for positives. Negatives sometimes get large nuclei off-centre, so position matters."""
    out = np.empty((len(labels), _SIZE, _SIZE, 3), np.uint8)
    for k, label in enumerate(labels):
        stain = np.array([225, 165, 200]) + rng.normal(0, 12, 3)  # per-slide stain variation
        texture = cv2.resize(rng.normal(0, 1, (12, 12, 3)).astype(np.float32), (_SIZE, _SIZE))
        image = np.clip(stain + 14 * texture, 0, 255).astype(np.uint8)
        for _ in range(rng.poisson(40)):  # ordinary small nuclei anywhere
            _nucleus(image, rng, rng.integers(0, _SIZE, 2), rng.uniform(1.5, 3.2), 0.55)
        if label:  # tumour: several enlarged, darker nuclei inside the centre
            for _ in range(rng.integers(2, 7)):
                _nucleus(image, rng, rng.integers(_CENTRE.start, _CENTRE.stop, 2), rng.uniform(3.0, 5.5), 0.8)
        elif rng.random() < 0.5:  # decoy: the same nuclei, but outside the centre
            for _ in range(rng.integers(2, 7)):
                xy = rng.integers(0, _SIZE - 32, 2)
                xy = np.where(xy >= _CENTRE.start, xy + 32, xy)  # shift out of the centre band
                _nucleus(image, rng, xy, rng.uniform(3.0, 5.5), 0.8)
        image = cv2.GaussianBlur(image, (3, 3), 0.8)
        noise = rng.normal(0, 6, image.shape)
        out[k] = np.clip(image + noise, 0, 255).astype(np.uint8)
    return out


def _nucleus(image: np.ndarray, rng: np.random.Generator, xy, radius: float, darkness: float) -> None:
    colour = np.array([120, 70, 165]) * (1.25 - 0.6 * darkness) + rng.normal(0, 8, 3)
    axes = (max(1, int(radius)), max(1, int(radius * rng.uniform(0.6, 1.0))))
    cv2.ellipse(
        image,
        (int(xy[0]), int(xy[1])),
        axes,
        float(rng.uniform(0, 180)),
        0,
        360,
        tuple(float(c) for c in np.clip(colour, 0, 255)),
        -1,
    )


def synthesize(adapter: Adapter, raw: Path, n_train: int, n_test: int, seed: int) -> None:
    """Write ``n_train`` + ``n_test`` synthetic images in ``adapter``'s layout under ``raw`` (``kit synth``)."""
    write_kaggle_layout(adapter, raw, draw_patches, n_train, n_test, seed)
