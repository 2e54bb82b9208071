"""The HDF5 store: one file per competition dataset, written by ``kit.ingest.writer`` and read by everything after.

Layout::

    /train/images   uint8 (N, H, W, C), chunked along N       /test/images   uint8 (M, H, W, C)
    /train/ids      str (N,)   labels-CSV order                /test/ids      str (M,)  sample_submission order
    /train/labels   int64 (N,) class indices; uint8 (N, C) multi-hot rows for a multilabel task
    /train/groups   str (N,)   only for adapters with a group column (e.g. ISIC's patient_id)
    /quarantine/{split,id,path,reason}   str: every file or row that could not be used, and why
    attributes: adapter, slug, source, kit_version, image_shape, fit, task, classes (label names in index
                order), n_train, n_test, n_quarantined, created, complete (written last; a store without it is
                never read as finished). Stores written before task/classes existed are binary ("0", "1").

Example:
    >>> from kit.ingest.store import open_store
    >>> with open_store("data/pcam/pcam.h5") as h5:  # doctest: +SKIP
    ...     h5["train/images"][:256].shape
    (256, 96, 96, 3)
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from kit.errors import KitError

__all__ = [
    "open_store",
    "is_complete",
    "read_quarantine",
    "read_table",
    "read_labels",
    "store_classes",
    "chunk_rows",
    "CHUNK",
    "QUARANTINE_FIELDS",
]

CHUNK = 256  # images per HDF5 chunk: the loader reads whole chunks, never single rows (see kit.train.loader)
QUARANTINE_FIELDS = ("split", "id", "path", "reason")


def chunk_rows(image_shape) -> int:
    """Images per HDF5 chunk (and per loader block) for this image shape: 256 PCam-sized images (6.75 MiB),
    fewer for larger images so a chunk, and the loader's cache of 16 of them, stay the same size.

    Example:
        >>> chunk_rows((96, 96, 3)), chunk_rows((128, 128, 3)), chunk_rows((384, 384, 3))
        (256, 128, 16)
    """
    image_bytes = max(1, int(np.prod(image_shape)))
    rows = CHUNK * 96 * 96 * 3 / image_bytes
    return int(min(CHUNK, max(8, 2 ** round(np.log2(rows)))))


def is_complete(path) -> bool:
    """True when ``path`` is a store whose writer finished (its ``complete`` flag is set)."""
    try:
        with h5py.File(path, "r") as h5:
            return bool(h5.attrs.get("complete", False))
    except (OSError, KeyError):
        return False


def open_store(path) -> h5py.File:
    """Open a finished store read-only; explain how to make one when it is missing or unfinished."""
    path = Path(path)
    if not path.exists():
        raise KitError(f"expected an HDF5 store at {path}, found nothing. Fix: run `kit ingest` first.")
    if not is_complete(path):
        raise KitError(f"{path} is not a finished kit store (no `complete` flag). Fix: rerun `kit ingest`.")
    return h5py.File(path, "r")


def read_table(h5: h5py.File, split: str) -> pd.DataFrame:
    """ids (and labels for train: the class index, or the multi-hot row as text "0 1 1") of one split, in store
    order."""
    table = pd.DataFrame({"id": h5[f"{split}/ids"].asstr()[:]})
    if f"{split}/labels" in h5:
        labels = h5[f"{split}/labels"][:]
        table["label"] = labels if labels.ndim == 1 else [" ".join(map(str, row)) for row in labels]
    return table


def read_labels(h5: h5py.File) -> np.ndarray:
    """The train labels: class indices (N,), or multi-hot rows (N, C)."""
    return h5["train/labels"][:]


def store_classes(h5: h5py.File) -> tuple[str, tuple[str, ...]]:
    """(task, class names) of a store; stores written before these attributes were binary.

    Example:
        >>> with open_store("data/pcam/pcam.h5") as h5:  # doctest: +SKIP
        ...     store_classes(h5)
        ('binary', ('0', '1'))
    """
    task = h5.attrs.get("task", "binary")
    classes = h5.attrs.get("classes", ("0", "1"))
    return str(task), tuple(str(c) for c in classes)


def read_quarantine(path) -> pd.DataFrame:
    """The quarantine table of a store (finished or not) as a DataFrame."""
    with h5py.File(path, "r") as h5:
        if "quarantine" not in h5:
            return pd.DataFrame(columns=list(QUARANTINE_FIELDS))
        return pd.DataFrame({k: h5[f"quarantine/{k}"].asstr()[:] for k in QUARANTINE_FIELDS})
