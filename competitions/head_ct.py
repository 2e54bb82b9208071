"""Head CT hemorrhage (Kaggle dataset felipekitamura/head-ct-hemorrhage) as an image folder plus a label CSV.

Layout: ``train/<id>.png`` with ``labels.csv`` (``id;hemorrhage``, semicolon-separated) and ``test/<id>.png``
with ``test.csv`` (``id``). Grayscale PNG slices of varying size, stored as 128x128 single-channel images,
letterboxed (``fit="pad"``) so the whole skull is kept. Label 1 = hemorrhage. This adapter is also the
template for any "folder of images + CSV of labels" dataset: change the folders, columns and separator.

Example:
    >>> from competitions.head_ct import HEAD_CT
    >>> HEAD_CT.csv_sep, HEAD_CT.label_column
    (';', 'hemorrhage')
"""

from __future__ import annotations

from competitions.synthetic import head_ct as synthetic
from kit.adapters.base import Adapter

__all__ = ["HEAD_CT"]

HEAD_CT = Adapter(
    name="head-ct",
    slug="felipekitamura/head-ct-hemorrhage",
    kind="dataset",
    train_dir="train",
    test_dir="test",
    labels_csv="labels.csv",
    sample_submission_csv="test.csv",
    id_column="id",
    label_column="hemorrhage",
    image_suffix=".png",
    image_format=None,
    image_shape=(128, 128, 1),
    metric="roc_auc",
    synthesize=synthetic.synthesize,
    csv_sep=";",
    fit="pad",
    # left and right are interchangeable in an axial slice; patients lie slightly rotated
    train_augment=(
        {"name": "HorizontalFlip", "p": 0.5},
        {"name": "Affine", "rotate": [-15, 15], "scale": [0.95, 1.05], "p": 0.7},
        {"name": "RandomBrightnessContrast", "brightness_limit": 0.1, "contrast_limit": 0.1, "p": 0.5},
    ),
)
