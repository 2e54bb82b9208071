"""Synthetic head CT: axial slices of varying size, a hemorrhage as a bright blob inside the skull.

Written in the layout Kaggle ships: ``head_ct/head_ct/000.png ...`` and ``labels.csv`` headed ``id, hemorrhage``
with integer ids; the test images (which the Kaggle dataset lacks) go to the optional ``test/`` + ``test.csv``.

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
from kit.errors import KitError
from kit.synth.layout import SYNTH_TEST_LABELS, encode_image

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
    """Write ``n_train`` labelled + ``n_test`` test images in ``adapter``'s layout under ``raw`` (``kit synth``).

    Ids are 0, 1, ... (train first), files ``adapter.file_stem`` + suffix; 3 % of written labels are flipped
    (annotations are imperfect), the first two train rows are one of each class.
    """
    if n_train < 2 or n_test < 1:
        raise KitError(
            f"expected --train >= 2 and --test >= 1, got --train {n_train} --test {n_test}. "
            "Fix: ask for at least two train images and one test image."
        )
    raw, rng = Path(raw), np.random.default_rng(seed)
    n = n_train + n_test
    truth = (rng.random(n) < 0.5).astype(np.int64)
    truth[:2] = (0, 1)
    written = np.where(rng.random(n) < 0.03, 1 - truth, truth)
    written[:2] = truth[:2]
    for folder, rows in ((adapter.train_dir, range(n_train)), (adapter.test_dir, range(n_train, n))):
        (raw / folder).mkdir(parents=True, exist_ok=True)
        for k, image in zip(rows, draw_slices(rng, truth[list(rows)])):
            name = adapter.file_stem.format(id=str(k), n=k) + adapter.image_suffix
            (raw / folder / name).write_bytes(encode_image(image, adapter.image_suffix))
    labels = "".join(f"{k}, {written[k]}\n" for k in range(n_train))
    (raw / adapter.labels_csv).write_text(f"{adapter.id_column}, {adapter.label_column}\n{labels}")
    (raw / adapter.sample_submission_csv).write_text(
        f"{adapter.id_column}\n" + "".join(f"{k}\n" for k in range(n_train, n))
    )
    hidden = "".join(f"{k},{written[k]}\n" for k in range(n_train, n))
    (raw / SYNTH_TEST_LABELS).write_text(f"id,label\n{hidden}")
