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
from kit.paths import default_store

__all__ = [
    "open_store",
    "is_complete",
    "read_quarantine",
    "read_table",
    "read_labels",
    "store_classes",
    "check_store",
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


def open_store(path, adapter=None, image_shape=None) -> h5py.File:
    """Open a finished store read-only; explain how to make one when it is missing or unfinished.

    With ``adapter`` (and a run's ``image_shape``), also check the store belongs to them (``check_store``).
    """
    path = Path(path)
    if not path.exists():
        raise KitError(f"expected an HDF5 store at {path}, found nothing. Fix: run `kit ingest` first.")
    if not is_complete(path):
        raise KitError(f"{path} is not a finished kit store (no `complete` flag). Fix: rerun `kit ingest`.")
    h5 = h5py.File(path, "r")
    if adapter is not None:
        try:
            check_store(h5, path, adapter, image_shape)
        except KitError:
            h5.close()
            raise
    return h5


def check_store(h5: h5py.File, path, adapter, image_shape=None) -> None:
    """Raise KitError unless the store was ingested for ``adapter``: its name, task and classes, its images'
    channels (and whole shape for an exact-fit adapter), and ``image_shape`` when a run was trained at one.

    Example:
        >>> with h5py.File("data/pcam/pcam.h5") as h5:  # doctest: +SKIP
        ...     check_store(h5, "data/pcam/pcam.h5", get_adapter("head-ct"))
        Traceback (most recent call last):
        kit.errors.KitError: expected a store of head-ct ... got data/pcam/pcam.h5: ingested for pcam ...
    """
    shape = tuple(int(v) for v in h5["train/images"].shape[1:])
    text = "x".join(map(str, shape))
    task, classes = store_classes(h5)
    name = str(h5.attrs.get("adapter", "?"))
    problems = []
    if name != adapter.name:
        problems.append(f"ingested for {name}")
    written_before_classes = "classes" not in h5.attrs  # a binary store of an older kit: no names to compare
    if task != adapter.task or (not written_before_classes and classes != tuple(adapter.class_names)):
        problems.append(f"{task} with classes {list(classes)[:12]}")
    wanted = tuple(adapter.image_shape)
    if image_shape is not None and shape != tuple(image_shape):
        problems.append(f"images {text} where the run trained on {'x'.join(map(str, image_shape))}")
    elif shape[2] != wanted[2] or (adapter.fit == "exact" and shape != wanted):
        problems.append(f"images {text}")
    if problems:
        size = "x".join(map(str, tuple(image_shape) if image_shape is not None else wanted))
        raise KitError(
            f"expected a store of {adapter.name} ({adapter.task}, {len(adapter.class_names)} classes, images {size}), "
            f"got {path}: {', '.join(problems)}. Fix: pass the store ingested for {adapter.name} "
            f"(`kit ingest {adapter.name}` writes it to {default_store(adapter.name)})."
        )


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
