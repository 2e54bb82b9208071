"""Plant Seedlings Classification (Kaggle competition plant-seedlings-classification): 12 species, one folder each.

Files exactly as Kaggle ships them: ``train/<species>/<file>.png`` (species names with spaces and hyphens:
``Common Chickweed``, ``Loose Silky-bent``), a flat ``test/`` folder and ``sample_submission.csv`` headed
``file,species`` whose ``file`` is the file name with its suffix (``0021e90e4.png``). Ids are therefore file
names with the suffix, train and test alike, and the test split is read in the sample submission's order. The
score is the micro-averaged F1 over the predicted species (one species per image: accuracy); the submission
names the species (``class_name``). RGB photos of varying size (square-ish, a few hundred pixels), stored as
128x128 letterboxed (``fit="pad"``): a seedling's leaves reach the photo's edges, and a centre crop of the
non-square ones would cut them off, while padding only adds thin bands. Seedlings are photographed from above,
so every dihedral view is the same plant: D4 for training and TTA, plus mild colour jitter for the lighting.

Example:
    >>> from competitions.plant_seedlings import PLANT_SEEDLINGS
    >>> PLANT_SEEDLINGS.task, len(PLANT_SEEDLINGS.classes), PLANT_SEEDLINGS.id_is_file_name
    ('multiclass', 12, True)
"""

from __future__ import annotations

from competitions.synthetic import plant_seedlings as synthetic
from kit.adapters.folder_per_class import FolderPerClassAdapter

__all__ = ["PLANT_SEEDLINGS", "SPECIES"]

SPECIES = (
    "Black-grass",
    "Charlock",
    "Cleavers",
    "Common Chickweed",
    "Common wheat",
    "Fat Hen",
    "Loose Silky-bent",
    "Maize",
    "Scentless Mayweed",
    "Shepherds Purse",
    "Small-flowered Cranesbill",
    "Sugar beet",
)

PLANT_SEEDLINGS = FolderPerClassAdapter(
    name="plant-seedlings",
    slug="plant-seedlings-classification",
    kind="competition",
    train_dir="train",
    test_dir="test",
    labels_csv="",
    sample_submission_csv="sample_submission.csv",
    id_column="file",
    label_column="species",
    image_suffix="",
    suffixes=(".png",),
    id_is_file_name=True,
    image_format=None,
    image_shape=(128, 128, 3),
    fit="pad",
    task="multiclass",
    classes=SPECIES,
    metric="micro_f1",
    extra_metrics=("accuracy", "macro_f1"),
    tta="d4",
    submission="class_name",
    synthesize=synthetic.synthesize,
    # seen from above: no up or down; mild colour jitter for the greenhouse lighting
    train_augment=(
        {"name": "D4", "p": 1.0},
        {"name": "HueSaturationValue", "hue_shift_limit": 5, "sat_shift_limit": 10, "val_shift_limit": 10, "p": 0.5},
        {"name": "RandomBrightnessContrast", "brightness_limit": 0.1, "contrast_limit": 0.1, "p": 0.5},
    ),
)
