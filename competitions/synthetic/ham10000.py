"""Synthetic HAM10000: dermoscopy-like photos whose lesion colour and lobe count follow the diagnosis, several
photos per lesion; in Kaggle's layout (``HAM10000_images_part_1|2/ISIC_00xxxxx.jpg`` and
``HAM10000_metadata.csv`` with ``lesion_id,image_id,dx,dx_type,age,sex,localization``), plus the optional
``test/`` + ``test.csv`` the Kaggle dataset lacks.

Example:
    >>> from competitions.synthetic.ham10000 import draw_dermoscopy
    >>> import numpy as np
    >>> len(draw_dermoscopy(np.random.default_rng(0), np.array([0, 6])))
    2
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from kit.adapters.base import Adapter
from kit.synth.generic import class_colour, write_dataset
from kit.synth.layout import _write_csv

__all__ = ["draw_dermoscopy", "synthesize"]


def draw_dermoscopy(rng: np.random.Generator, labels: np.ndarray) -> list[np.ndarray]:
    """Skin-coloured photos (4:3, 176 to 208 px wide: JPEGs at least the stored side) with a centred lesion: its
    colour (a class hue mixed into brown) and number of lobes (1 to 3) follow the diagnosis index."""
    out = []
    for label in np.asarray(labels).astype(int):
        w = int(rng.integers(176, 208))
        h = int(w * 0.75)
        skin = np.array([215, 170, 150]) + rng.normal(0, 10, 3)
        image = np.clip(skin + rng.normal(0, 6, (h, w, 3)), 0, 255).astype(np.uint8)
        colour = 0.5 * np.array([120, 80, 60]) + 0.5 * np.array(class_colour(label, 7))
        radius = h * rng.uniform(0.15, 0.22)
        for _ in range(1 + label % 3):
            centre = np.array([w / 2, h / 2]) + rng.normal(0, radius * 0.4, 2)
            axes = (int(radius), int(radius * rng.uniform(0.7, 1.0)))
            angle = float(rng.uniform(0, 180))
            cv2.ellipse(image, tuple(int(c) for c in centre), axes, angle, 0, 360, tuple(colour.tolist()), -1)
        out.append(cv2.GaussianBlur(image, (3, 3), 0.8))
    return out


def _image_ids(rng: np.random.Generator, labels: np.ndarray, split: str) -> list[str]:
    start = 24306 if split == "train" else 34321  # ISIC_0024306 is HAM10000's first image
    return [f"ISIC_{start + k:07d}" for k in range(len(labels))]


def synthesize(adapter: Adapter, raw: Path, n_train: int, n_test: int, seed: int) -> None:
    """Write ``n_train`` + ``n_test`` synthetic images in ``adapter``'s layout under ``raw`` (``kit synth``)."""
    written = write_dataset(adapter, raw, n_train, n_test, seed, draw=draw_dermoscopy, ids=_image_ids, suffix=".jpg")
    rng = np.random.default_rng(seed + 1)
    rows = sorted(written["train"], key=lambda row: (row[2], row[0]))  # a lesion's photos share its diagnosis
    lesions, left = [], 0
    for k, (_, _, label) in enumerate(rows):
        if left == 0 or label != rows[k - 1][2]:  # a new lesion: 1 to 3 photos, all of one diagnosis
            lesions.append(f"HAM_{k:07d}")
            left = int(rng.integers(1, 4))
        else:
            lesions.append(lesions[-1])
        left -= 1
    order = rng.permutation(len(rows))
    pick = lambda values: [values[i] for i in order]  # noqa: E731 - the metadata is not sorted by lesion
    dx = [adapter.class_names[label] for _, _, label in rows]
    _write_csv(
        Path(raw) / adapter.labels_csv,
        ",",
        "lesion_id",
        pick(lesions),
        {
            "image_id": pick([i for i, _, _ in rows]),
            "dx": pick(dx),
            "dx_type": pick(["histo" if label in (0, 1, 4) else "follow_up" for _, _, label in rows]),
            "age": pick([f"{float(a):.1f}" for a in rng.integers(20, 85, len(rows)) // 5 * 5]),
            "sex": pick(rng.choice(["male", "female"], len(rows)).tolist()),
            "localization": pick(rng.choice(["back", "face", "trunk", "lower extremity"], len(rows)).tolist()),
        },
    )
