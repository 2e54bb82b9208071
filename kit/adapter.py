"""Competition adapters: data describing one competition, plus a registry.

The engine owns every loop; an adapter only says where files are, what the columns are called, what an image
looks like and how to score. Adapters live in the top-level ``competitions`` package and register themselves.

Example:
    >>> from kit.adapter import get_adapter
    >>> get_adapter("pcam").image_shape
    (96, 96, 3)
"""
from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import Callable

from kit.errors import KitError

__all__ = ["Adapter", "register_adapter", "get_adapter", "list_adapters"]

_ADAPTERS: dict[str, "Adapter"] = {}


@dataclasses.dataclass(frozen=True)
class Adapter:
    """What the engine needs to know about one competition's files.

    Attributes:
        name: short name used on the command line (``pcam``).
        slug: Kaggle competition slug.
        train_dir / test_dir: folders (relative to the raw folder) holding the images.
        labels_csv: train table (id and label columns), relative to the raw folder.
        sample_submission_csv: test ids in submission order, relative to the raw folder.
        id_column / label_column: column names in both CSVs.
        image_suffix: file name = id + suffix.
        image_format: magic-checked file format ("tiff"), or None to accept anything OpenCV decodes.
        image_shape: (H, W, C) every stored image has.
        metric: name of the score (``roc_auc`` on probabilities).
        synthesize: ``f(raw_dir, n_train, n_test, seed)`` writing a Kaggle-layout synthetic dataset.
        train_augment: default training augmentation, albumentations transforms as ``{"name": ..., **kwargs}``.
    """

    name: str
    slug: str
    train_dir: str
    test_dir: str
    labels_csv: str
    sample_submission_csv: str
    id_column: str
    label_column: str
    image_suffix: str
    image_format: str | None
    image_shape: tuple[int, int, int]
    metric: str
    synthesize: Callable[[Path, int, int, int], None]
    train_augment: tuple[dict, ...] = ()

    def image_path(self, raw: Path, split: str, image_id: str) -> Path:
        folder = self.train_dir if split == "train" else self.test_dir
        return Path(raw) / folder / f"{image_id}{self.image_suffix}"

    def table_path(self, raw: Path, split: str) -> Path:
        return Path(raw) / (self.labels_csv if split == "train" else self.sample_submission_csv)


def register_adapter(adapter: Adapter) -> Adapter:
    """Add an adapter to the registry (its name must be new)."""
    if adapter.name in _ADAPTERS:
        raise KitError(f"an adapter named {adapter.name!r} is already registered; pick another name.")
    _ADAPTERS[adapter.name] = adapter
    return adapter


def _load_competitions() -> None:
    # Adapters register on import; importing here keeps `get_adapter` usable without a separate import.
    importlib.import_module("competitions")


def get_adapter(name: str) -> Adapter:
    """Return the registered adapter ``name``; unknown names list the known ones."""
    _load_competitions()
    if name not in _ADAPTERS:
        raise KitError(f"unknown competition {name!r}; known: {', '.join(list_adapters())}.")
    return _ADAPTERS[name]


def list_adapters() -> list[str]:
    _load_competitions()
    return sorted(_ADAPTERS)
