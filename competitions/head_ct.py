"""Head CT hemorrhage (Kaggle dataset felipekitamura/head-ct-hemorrhage) as an image folder plus a label CSV.

Layout as Kaggle ships it: ``head_ct/head_ct/000.png ... 199.png`` and ``labels.csv`` with the header
``id, hemorrhage`` (comma and a space) and integer ids (id 7 is ``007.png``: ``file_stem="{n:03d}"``). The
separator is sniffed, so a ``;``-separated table reads too. The dataset has no test split: an optional
``test/<NNN>.png`` with ``test.csv`` (``id``) is read when present, otherwise the labelled images are the test
split. Grayscale PNG slices of varying size, stored as 128x128 single-channel images, letterboxed
(``fit="pad"``) so the whole skull is kept. Label 1 = hemorrhage. This adapter is also the template for any
"folder of images + CSV of labels" dataset: change the folders, columns and file names.

Example:
    >>> from competitions.head_ct import HEAD_CT
    >>> HEAD_CT.train_dir, HEAD_CT.file_stem, HEAD_CT.csv_sep
    ('head_ct/head_ct', '{n:03d}', None)
"""

from __future__ import annotations

from competitions.synthetic import head_ct as synthetic
from kit.adapters.base import Adapter

__all__ = ["HEAD_CT"]

HEAD_CT = Adapter(
    name="head-ct",
    slug="felipekitamura/head-ct-hemorrhage",
    kind="dataset",
    train_dir="head_ct/head_ct",
    test_dir="test",  # not in the Kaggle download: optional_test
    labels_csv="labels.csv",
    sample_submission_csv="test.csv",
    id_column="id",
    label_column="hemorrhage",
    image_suffix=".png",
    file_stem="{n:03d}",
    image_format=None,
    image_shape=(128, 128, 1),
    metric="roc_auc",
    synthesize=synthetic.synthesize,
    tta="hflip",
    csv_sep=None,  # sniffed: Kaggle's file is "id, hemorrhage"
    optional_test=True,
    fit="pad",
    # left and right are interchangeable in an axial slice; patients lie slightly rotated
    train_augment=(
        {"name": "HorizontalFlip", "p": 0.5},
        {"name": "Affine", "rotate": [-15, 15], "scale": [0.95, 1.05], "p": 0.7},
        {"name": "RandomBrightnessContrast", "brightness_limit": 0.1, "contrast_limit": 0.1, "p": 0.5},
    ),
)
