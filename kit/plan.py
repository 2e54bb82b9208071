"""What to ingest: one split's rows (id, label, file) checked against the CSV and the folder, plus every row or
file that cannot be used and why. Pure bookkeeping; no image is opened here.

Example:
    >>> from kit.adapter import get_adapter
    >>> plan = plan_split(get_adapter("pcam"), "data/pcam/raw", "train")  # doctest: +SKIP
    >>> len(plan.ids), plan.rejects[:1]  # doctest: +SKIP
    (220025, [])
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd

from kit.adapter import Adapter
from kit.errors import KitError

__all__ = ["SplitPlan", "Reject", "plan_split"]


@dataclasses.dataclass(frozen=True)
class Reject:
    """A row or file left out of the store, with the reason shown to the user."""

    split: str
    id: str
    path: str
    reason: str


@dataclasses.dataclass
class SplitPlan:
    split: str
    ids: list[str]
    paths: list[str]
    labels: np.ndarray | None  # None for the test split
    rejects: list[Reject]

    @property
    def fingerprint(self) -> str:
        """Changes whenever the rows to ingest change: a resumed ingest must continue the same plan."""
        digest = hashlib.sha256("\n".join(self.ids).encode())
        digest.update("\n".join(self.paths).encode())
        if self.labels is not None:
            digest.update(self.labels.tobytes())
        return digest.hexdigest()


def _read_csv(path: Path, adapter: Adapter, split: str) -> pd.DataFrame:
    if not path.is_file():
        raise KitError(
            f"expected the {split} table at {path}, found nothing. Fix: point --raw at the folder holding "
            f"Kaggle's files (`kit download {adapter.name}`), or make a synthetic one with `kit synth {adapter.name} DIR`."
        )
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise KitError(f"{path} is not a readable CSV ({e}). Fix: restore it from the Kaggle download.") from None
    needed = [adapter.id_column] + ([adapter.label_column] if split == "train" else [])
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise KitError(
            f"{path} must have columns {needed}; got {list(table.columns)} (missing {missing}). "
            "Fix: restore the file from the Kaggle download."
        )
    return table


def _list_folder(folder: Path) -> set[str]:
    try:
        with os.scandir(folder) as entries:
            return {e.name for e in entries if not e.is_dir()}
    except FileNotFoundError:
        raise KitError(f"expected the image folder {folder}, found nothing. Fix: check --raw.") from None


def plan_split(adapter: Adapter, raw, split: str) -> SplitPlan:
    """Check the split's table against its folder; every problem becomes a Reject, nothing is dropped."""
    raw = Path(raw)
    table_path = adapter.table_path(raw, split)
    table = _read_csv(table_path, adapter, split)
    folder = adapter.image_path(raw, split, "x").parent
    files = _list_folder(folder)
    prefix, suffix = f"{folder}{os.sep}", adapter.image_suffix  # plain strings: pathlib per row costs seconds
    rejects: list[Reject] = []
    ids, paths, labels = [], [], []
    seen: dict[str, int] = {}
    label_values = table[adapter.label_column].tolist() if split == "train" else [None] * len(table)
    conflicts = _conflicting_ids(table, adapter) if split == "train" else set()
    for row, (image_id, label) in enumerate(zip(table[adapter.id_column].tolist(), label_values), start=2):
        image_id = image_id.strip()
        path = f"{prefix}{image_id}{suffix}"
        where = f"{table_path.name} line {row}"
        if not image_id:
            rejects.append(Reject(split, "", "", f"{where}: empty id"))
            continue
        if image_id in conflicts:
            rejects.append(Reject(split, image_id, path, f"{where}: duplicate id with conflicting labels"))
            continue
        if image_id in seen:
            rejects.append(Reject(split, image_id, path, f"{where}: duplicate id (first at line {seen[image_id]})"))
            continue
        seen[image_id] = row
        if label is not None:
            try:
                label = int(label)
            except ValueError:
                rejects.append(Reject(split, image_id, path, f"{where}: label {label!r} is not an integer"))
                continue
        if f"{image_id}{adapter.image_suffix}" not in files:
            rejects.append(Reject(split, image_id, path, f"{where}: image file is missing"))
            continue
        ids.append(image_id)
        paths.append(path)
        labels.append(label)
    listed = {f"{i}{adapter.image_suffix}" for i in seen} | {f"{i}{adapter.image_suffix}" for i in conflicts}
    for name in sorted(files - listed):
        stem = name[: -len(adapter.image_suffix)] if name.endswith(adapter.image_suffix) else name
        rejects.append(Reject(split, stem, str(folder / name), f"file has no row in {table_path.name}"))
    return SplitPlan(split, ids, paths, np.asarray(labels, np.int64) if split == "train" else None, rejects)


def _conflicting_ids(table: pd.DataFrame, adapter: Adapter) -> set[str]:
    ids = table[adapter.id_column].str.strip()
    dup = table[ids.duplicated(keep=False)]
    if dup.empty:
        return set()
    counts = dup.groupby(dup[adapter.id_column].str.strip())[adapter.label_column].nunique()
    return set(counts[counts > 1].index)
