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

from competitions.synthetic import chest_xray as synthetic
from kit.adapters.folder_per_class import FolderPerClassAdapter

__all__ = ["CHEST_XRAY"]

CHEST_XRAY = FolderPerClassAdapter(
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
    synthesize=synthetic.synthesize,
    tta="none",
    fit="stretch",
    classes=("NORMAL", "PNEUMONIA"),
    positive_class="PNEUMONIA",
    # radiographs have an orientation (heart on the left): small shifts, zooms and rotations, no flips
    train_augment=(
        {"name": "Affine", "scale": [0.9, 1.1], "rotate": [-10, 10], "translate_percent": [-0.05, 0.05], "p": 0.7},
        {"name": "RandomBrightnessContrast", "brightness_limit": 0.15, "contrast_limit": 0.15, "p": 0.5},
    ),
)
