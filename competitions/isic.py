"""SIIM-ISIC Melanoma Classification: dermoscopy JPEGs of many sizes, ~1.8% melanoma, several images per patient.

Kaggle's files: ``train.csv`` (image_name, patient_id, ..., target), ``test.csv``, ``sample_submission.csv``
(image_name, target) and ``jpeg/train|test/<image_name>.jpg``. Images are decoded and resized at ingest to a
square side (128 by default, ``kit ingest isic --size 384`` on a GPU): the centre square is kept (lesions are
photographed centred; the long side's edges are mostly skin), then area-resized. Folds are grouped by
``patient_id`` so a patient's images never sit on both sides of a fold; with so few positives use
``--set train.class_weight="balanced"`` to weight them up.

Example:
    >>> from competitions.isic import ISIC
    >>> ISIC.group_column, ISIC.fit
    ('patient_id', 'crop')
"""

from __future__ import annotations

from competitions.synthetic import isic as synthetic
from kit.adapters.base import Adapter

__all__ = ["ISIC"]

ISIC = Adapter(
    name="isic",
    slug="siim-isic-melanoma-classification",
    train_dir="jpeg/train",
    test_dir="jpeg/test",
    labels_csv="train.csv",
    sample_submission_csv="sample_submission.csv",
    id_column="image_name",
    label_column="target",
    image_suffix=".jpg",
    image_format=None,
    image_shape=(128, 128, 3),
    metric="roc_auc",
    synthesize=synthetic.synthesize,
    tta="d4",
    group_column="patient_id",
    fit="crop",
    # dermoscopy has no up or down: the 8 dihedral views; colour varies between cameras and lighting
    train_augment=(
        {"name": "D4", "p": 1.0},
        {"name": "HueSaturationValue", "hue_shift_limit": 10, "sat_shift_limit": 15, "val_shift_limit": 10, "p": 0.5},
        {"name": "RandomBrightnessContrast", "brightness_limit": 0.15, "contrast_limit": 0.15, "p": 0.5},
    ),
)
