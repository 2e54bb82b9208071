"""What to ingest: one split's rows (id, label, file) checked against the CSV and the folder, plus every row or
file that cannot be used and why. Pure bookkeeping; no image is opened here.

Example:
    >>> from kit.adapters.registry import get_adapter
    >>> plan = plan_split(get_adapter("pcam"), "data/pcam/raw", "train")  # doctest: +SKIP
    >>> len(plan.ids), plan.rejects[:1]  # doctest: +SKIP
    (220025, [])
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from kit.adapters.base import Adapter

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
    groups: list[str] | None = None  # fold groups (e.g. patient ids) when the adapter has them
    excluded: list[Reject] = dataclasses.field(default_factory=list)  # files the adapter excludes: reported only

    @property
    def fingerprint(self) -> str:
        """Changes whenever the rows to ingest change: a resumed ingest must continue the same plan."""
        digest = hashlib.sha256("\n".join(self.ids).encode())
        digest.update("\n".join(self.paths).encode())
        if self.labels is not None:
            digest.update(self.labels.tobytes())
        if self.groups is not None:
            digest.update("\n".join(self.groups).encode())
        return digest.hexdigest()


def plan_split(adapter: Adapter, raw, split: str) -> SplitPlan:
    """Check the split's rows (``adapter.list_split``) and files; every problem becomes a Reject, nothing is dropped."""
    listing = adapter.list_split(Path(raw), split)
    rows = listing.rows
    rejects: list[Reject] = []
    ids, paths, labels, groups = [], [], [], []
    seen: dict[str, str] = {}
    has_labels, has_groups = "label" in rows, "group" in rows
    conflicts = _conflicting_ids(rows) if has_labels else set()
    label_values = rows["label"].tolist() if has_labels else [None] * len(rows)
    group_values = rows["group"].tolist() if has_groups else [None] * len(rows)
    problems = rows["problem"].tolist() if "problem" in rows else [""] * len(rows)
    columns = (rows[c].tolist() for c in ("id", "path", "where", "exists"))
    for image_id, path, where, exists, label, group, problem in zip(*columns, label_values, group_values, problems):
        if not image_id:
            rejects.append(Reject(split, "", "", f"{where}: empty id"))
            continue
        if image_id in conflicts:
            rejects.append(Reject(split, image_id, path, f"{where}: duplicate id with conflicting labels"))
            continue
        if image_id in seen:
            rejects.append(Reject(split, image_id, path, f"{where}: duplicate id (first at {seen[image_id]})"))
            continue
        seen[image_id] = where
        if label is not None:
            try:
                label = adapter.encode_label(label)
            except ValueError as e:
                rejects.append(Reject(split, image_id, path, f"{where}: {e}"))
                continue
        if has_groups and not group:
            rejects.append(Reject(split, image_id, path, f"{where}: empty {adapter.group_column!r} (its fold group)"))
            continue
        if problem:
            rejects.append(Reject(split, image_id, "", f"{where}: {problem}"))
            continue
        if not exists:
            rejects.append(Reject(split, image_id, path, f"{where}: image file is missing"))
            continue
        ids.append(image_id)
        paths.append(path)
        labels.append(label)
        groups.append(group)
    rejects += [Reject(split, Path(path).stem, path, reason) for path, reason in listing.strays]
    label_array = _label_array(adapter, labels) if has_labels else None
    excluded = [Reject(split, Path(path).stem, path, reason) for path, reason in listing.skipped]
    return SplitPlan(split, ids, paths, label_array, rejects, groups if has_groups else None, excluded)


def _label_array(adapter: Adapter, labels: list) -> np.ndarray:
    """Class indices (N,) int64, or multi-hot rows (N, C) uint8 for a multilabel adapter."""
    if adapter.task == "multilabel":
        return np.asarray(labels, np.uint8).reshape(len(labels), adapter.n_outputs)
    return np.asarray(labels, np.int64)


def _conflicting_ids(rows: pd.DataFrame) -> set[str]:
    dup = rows[rows["id"].duplicated(keep=False)]
    if dup.empty:
        return set()
    counts = dup.groupby("id")["label"].nunique()
    return set(counts[counts > 1].index)
