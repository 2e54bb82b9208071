"""Breast Ultrasound Images (Kaggle dataset aryashah2k/breast-ultrasound-images-dataset, BUSI): 3 classes.

Files exactly as Kaggle ships them: ``Dataset_BUSI_with_GT/{benign,malignant,normal}/benign (1).png ...`` (spaces
and parentheses in the names); beside each image lie its segmentation masks, ``benign (1)_mask.png`` and for some
also ``benign (1)_mask_1.png``. The masks are not images to classify: ``exclude`` lists them as skipped (reason
"segmentation mask of 'benign (1).png', ..."), never ingested nor quarantined. Ids are the file names without
suffix (``benign (1)``), unique across the folders. Grayscale ultrasound of varying size, stored as 128x128x1,
letterboxed (``fit="pad"``) so a lesion near the edge is kept. Scored by balanced accuracy (the classes are
imbalanced: 437 benign, 210 malignant, 133 normal) with the macro one-vs-rest AUC beside it. Left and right are
interchangeable in a B-mode frame, up and down are not (the probe is at the top): hflip TTA. A Kaggle dataset
without a test split: an optional flat ``test/`` folder is read when present, otherwise the labelled images stand
in (``optional_test``).

Example:
    >>> from competitions.busi import BUSI
    >>> BUSI.classes, BUSI.image_shape
    (('benign', 'malignant', 'normal'), (128, 128, 1))
"""

from __future__ import annotations

from competitions.synthetic import busi as synthetic
from kit.adapters.folder_per_class import FolderPerClassAdapter

__all__ = ["BUSI"]

BUSI = FolderPerClassAdapter(
    name="busi",
    slug="aryashah2k/breast-ultrasound-images-dataset",
    kind="dataset",
    train_dir="Dataset_BUSI_with_GT",
    test_dir="test",  # not in the Kaggle download: optional_test
    labels_csv="",
    sample_submission_csv="",
    id_column="id",
    label_column="label",
    image_suffix="",
    suffixes=(".png",),
    exclude=("*_mask.png", "*_mask_*.png"),
    exclude_reason="segmentation mask",
    optional_test=True,
    image_format=None,
    image_shape=(128, 128, 1),
    fit="pad",
    task="multiclass",
    classes=("benign", "malignant", "normal"),
    metric="balanced_accuracy",
    extra_metrics=("auc_macro_ovr",),
    tta="hflip",
    submission="class_probs",
    synthesize=synthetic.synthesize,
    train_augment=(
        {"name": "HorizontalFlip", "p": 0.5},
        {"name": "Affine", "scale": [0.9, 1.1], "rotate": [-10, 10], "translate_percent": [-0.05, 0.05], "p": 0.7},
        {"name": "RandomBrightnessContrast", "brightness_limit": 0.15, "contrast_limit": 0.15, "p": 0.5},
    ),
)
