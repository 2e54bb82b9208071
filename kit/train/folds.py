"""Cross-validation folds: scikit-learn splitters, saved as ``folds.csv`` (id, fold), plus reusable invariant checks.

Stratified K-fold by default; stratified group K-fold when the store has groups (e.g. one patient's images must
never sit on both sides of a split).

Example:
    >>> import numpy as np
    >>> from kit.train.folds import make_folds, check_folds
    >>> ids = [f"i{k}" for k in range(20)]
    >>> folds = make_folds(ids, np.arange(20) % 2, k=4, seed=0)
    >>> check_folds(folds, k=4)
    >>> sorted(folds["fold"].unique().tolist())
    [0, 1, 2, 3]
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from kit.errors import KitError

__all__ = ["make_folds", "check_folds", "fold_rows"]


def make_folds(ids, labels, k: int, seed: int, groups=None) -> pd.DataFrame:
    """Assign every id to exactly one validation fold (0..k-1), stratified by label (and grouped if given)."""
    labels = np.asarray(labels)
    if k < 2:
        raise KitError(f"expected folds.k >= 2, got {k}. Fix: --set folds.k=5.")
    counts = np.bincount(labels.astype(np.int64))
    if counts[counts > 0].min() < k:
        raise KitError(
            f"the rarest class has {counts[counts > 0].min()} images, fewer than folds.k={k}: some fold "
            "would validate without it. Fix: lower folds.k."
        )
    if groups is None:
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    else:
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    fold = np.full(len(labels), -1, np.int64)
    for f, (_, valid) in enumerate(splitter.split(np.zeros(len(labels)), labels, groups)):
        if len(np.unique(labels[valid])) < len(np.unique(labels)):
            raise KitError(
                f"fold {f} would validate without every class (its {len(valid)} images hold labels "
                f"{sorted(np.unique(labels[valid]).tolist())}): the groups keep the rare class in too few "
                "groups to spread over folds.k folds. Fix: lower folds.k."
            )
        fold[valid] = f
    out = pd.DataFrame({"id": list(ids), "fold": fold})
    if groups is not None:
        out["group"] = np.asarray(groups)
    return out


def check_folds(folds: pd.DataFrame, k: int, ids=None) -> None:
    """Raise KitError unless folds are sound: every id validated exactly once, k non-empty folds, groups unsplit.

    A fold's training set is every other row, so "validated exactly once" also means no id is in both the
    training and the validation side of any fold.
    """
    if folds["id"].duplicated().any():
        dup = folds.loc[folds["id"].duplicated(), "id"].head(5).tolist()
        raise KitError(f"folds list some ids more than once, e.g. {dup}. Fix: rebuild the folds.")
    if ids is not None and set(folds["id"]) != set(ids):
        missing = sorted(set(ids) - set(folds["id"]))[:5]
        extra = sorted(set(folds["id"]) - set(ids))[:5]
        raise KitError(
            f"folds do not cover the store's train ids (missing e.g. {missing}, extra e.g. {extra}). "
            "Fix: rebuild the folds for this store (start a new run)."
        )
    present = sorted(folds["fold"].unique().tolist())
    if present != list(range(k)):
        raise KitError(
            f"expected folds 0..{k - 1}, each non-empty; got {present}. Fix: use fewer folds (folds.k) than "
            "the smallest class (or group) has rows."
        )
    if "group" in folds:
        spread = folds.groupby("group")["fold"].nunique()
        if (spread > 1).any():
            raise KitError(
                f"expected every group in one fold, got groups split across folds: "
                f"{spread[spread > 1].index[:5].tolist()}. Fix: make the folds with make_folds(..., groups)."
            )


def fold_rows(folds: pd.DataFrame, fold: int) -> tuple[np.ndarray, np.ndarray]:
    """Store rows (sorted) used to train and to validate ``fold``; folds.csv rows are in store order."""
    is_valid = folds["fold"].to_numpy() == fold
    return np.flatnonzero(~is_valid), np.flatnonzero(is_valid)
