"""Skin Cancer MNIST: HAM10000 (Kaggle dataset kmader/skin-cancer-mnist-ham10000): 7 diagnoses, dermoscopy.

Files exactly as Kaggle ships them: ``HAM10000_images_part_1/<image_id>.jpg`` and ``HAM10000_images_part_2/
<image_id>.jpg`` (each image in one of the two; ``train_dir`` names both and each id's file is searched in order)
and ``HAM10000_metadata.csv`` (``lesion_id,image_id,dx,dx_type,age,sex,localization``). Only the folders named here
are read: other files of the download (the ``hmnist_*.csv`` pixel tables, any other copy of the image folders) are
ignored. ``dx`` is one of akiec, bcc, bkl, df, mel, nv, vasc (67% nv). A lesion is photographed several times, so
folds are grouped by ``lesion_id``. 600x450 RGB JPEGs, stored as 128x128 centre squares (``fit="crop"``: the
lesion is centred, the long side's edges are skin). Scored by balanced accuracy (the ISIC 2018 challenge's
metric) with the macro one-vs-rest AUC beside it; the submission has one probability column per class, named as
in ISIC 2018 (``image,AKIEC,BCC,...``). Dermoscopy has no up or down: D4 TTA. A Kaggle dataset without a test
split: an optional ``test/`` + ``test.csv`` (``image_id``) is read when present, otherwise the labelled images
stand in (``optional_test``).

Example:
    >>> from competitions.ham10000 import HAM10000
    >>> HAM10000.train_dir, HAM10000.group_column
    (('HAM10000_images_part_1', 'HAM10000_images_part_2'), 'lesion_id')
"""

from __future__ import annotations

from competitions.synthetic import ham10000 as synthetic
from kit.adapters.base import Adapter

__all__ = ["HAM10000"]

HAM10000 = Adapter(
    name="ham10000",
    slug="kmader/skin-cancer-mnist-ham10000",
    kind="dataset",
    train_dir=("HAM10000_images_part_1", "HAM10000_images_part_2"),
    test_dir="test",  # not in the Kaggle download: optional_test
    labels_csv="HAM10000_metadata.csv",
    sample_submission_csv="test.csv",
    id_column="image_id",
    label_column="dx",
    group_column="lesion_id",
    image_suffix=".jpg",
    image_format=None,
    image_shape=(128, 128, 3),
    fit="crop",
    optional_test=True,
    task="multiclass",
    classes=("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"),
    class_columns=("AKIEC", "BCC", "BKL", "DF", "MEL", "NV", "VASC"),
    metric="balanced_accuracy",
    extra_metrics=("auc_macro_ovr",),
    tta="d4",
    submission="class_probs",
    synthesize=synthetic.synthesize,
    train_augment=(
        {"name": "D4", "p": 1.0},
        {"name": "HueSaturationValue", "hue_shift_limit": 10, "sat_shift_limit": 15, "val_shift_limit": 10, "p": 0.5},
        {"name": "RandomBrightnessContrast", "brightness_limit": 0.15, "contrast_limit": 0.15, "p": 0.5},
    ),
)
