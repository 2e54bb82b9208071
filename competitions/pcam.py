"""Histopathologic Cancer Detection (PCam): 96x96 RGB TIFF patches, label 1 when the centre 32x32 holds tumour.

Example:
    >>> from competitions.pcam import PCAM
    >>> PCAM.labels_csv
    'train_labels.csv'
"""

from __future__ import annotations

from competitions.synthetic import pcam as synthetic
from kit.adapters.base import Adapter

__all__ = ["PCAM"]

PCAM = Adapter(
    name="pcam",
    slug="histopathologic-cancer-detection",
    train_dir="train",
    test_dir="test",
    labels_csv="train_labels.csv",
    sample_submission_csv="sample_submission.csv",
    id_column="id",
    label_column="label",
    image_suffix=".tif",
    image_format="tiff",
    image_shape=(96, 96, 3),
    metric="roc_auc",
    synthesize=synthetic.synthesize,
    tta="d4",
    # Tissue has no orientation: all 8 dihedral views are equally valid. Mild colour jitter stands in for
    # the stain variation between labs; strong jitter hurts on H&E.
    train_augment=(
        {"name": "D4", "p": 1.0},
        {"name": "HueSaturationValue", "hue_shift_limit": 8, "sat_shift_limit": 12, "val_shift_limit": 8, "p": 0.5},
        {"name": "RandomBrightnessContrast", "brightness_limit": 0.1, "contrast_limit": 0.1, "p": 0.5},
    ),
)
