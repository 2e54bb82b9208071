"""Cross-validation folds: scikit-learn splitters, saved as ``folds.csv`` (id, fold), plus reusable invariant checks.

Class indices (N,): stratified K-fold by default; stratified group K-fold when the store has groups (e.g. one
patient's images must never sit on both sides of a split). Multi-hot rows (N, C): iterative stratification
(``iterstrat``'s MultilabelStratifiedKFold), which spreads each label's positives evenly over the folds; no library
splits multi-hot rows by group, so groups with multi-hot labels are refused.

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
from iterstrat.ml_stratifiers import MultilabelStratifiedKFold
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from kit.errors import KitError

__all__ = ["make_folds", "check_folds", "fold_rows", "parse_folds"]


def make_folds(ids, labels, k: int, seed: int, groups=None) -> pd.DataFrame:
    """Assign every id to exactly one validation fold (0..k-1), stratified by label (and grouped if given).

    ``labels``: class indices (N,), or multi-hot rows (N, C) of 0/1 (a multilabel task; no ``groups``).
    """
    labels, ids = np.asarray(labels), list(ids)
    if k < 2:
        raise KitError(f"expected folds.k >= 2, got {k}. Fix: --set folds.k=5.")
    if len(ids) != len(labels):
        raise KitError(f"expected one label row per id, got {len(labels)} label rows for {len(ids)} ids. Fix: "
                       "pass the store's train ids and labels together.")  # fmt: skip
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]  # one label column: a binary task, stratified the same way
    if labels.ndim == 2:
        return _multilabel_folds(ids, labels, k, seed, groups)
    if labels.ndim != 1:
        raise KitError(
            f"expected labels of shape (N,) (class indices) or (N, C) (multi-hot rows), got shape {labels.shape}. "
            "Fix: pass the store's train labels (kit.ingest.store)."
        )
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
    out = pd.DataFrame({"id": ids, "fold": fold})
    if groups is not None:
        out["group"] = np.asarray(groups)
    return out


def _multilabel_folds(ids: list, labels: np.ndarray, k: int, seed: int, groups) -> pd.DataFrame:
    """Iterative stratification of multi-hot rows (N, C): every label in every validation fold (a label needs at
    least k positive and k negative images)."""
    if groups is not None:
        raise KitError(
            "expected no groups with multi-hot (multilabel) labels, got groups: no library splitter both keeps a "
            "group in one fold and stratifies several labels at once. Fix: drop the adapter's group_column (a "
            "group's images may then sit on both sides of a split), or make the task multiclass."
        )
    if not np.isin(labels, (0, 1)).all():
        bad = sorted({str(v) for v in np.unique(labels[~np.isin(labels, (0, 1))])})[:5]
        raise KitError(f"expected multi-hot labels of 0 and 1 only, got values {bad}. Fix: re-ingest the store.")
    labels = labels.astype(np.int64)
    positives = labels.sum(axis=0)
    if not positives.any():
        raise KitError(
            f"expected some positive labels, got {len(labels)} rows with no label set: nothing to stratify or "
            "learn. Fix: check the adapter's label column."
        )
    constant = np.flatnonzero((positives == 0) | (positives == len(labels)))
    if len(constant):
        raise KitError(
            f"expected every label column both set and unset on some images, got columns {constant[:5].tolist()} "
            "the same on every image: their score is undefined on every fold, so training could not pick a best "
            "epoch. Fix: drop those classes from the adapter, or check its label column."
        )
    rarest = int(np.argmin(np.where(positives > 0, positives, np.iinfo(np.int64).max)))
    if positives[rarest] < k:
        raise KitError(
            f"the rarest label (column {rarest}) has {positives[rarest]} positive images, fewer than folds.k={k}: "
            "some fold would validate without it. Fix: lower folds.k."
        )
    splitter = MultilabelStratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    fold = np.full(len(labels), -1, np.int64)
    for f, (_, valid) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
        missing = np.flatnonzero((positives > 0) & (labels[valid].sum(axis=0) == 0))
        if len(missing):
            raise KitError(
                f"fold {f} would validate without label columns {missing[:5].tolist()} (its {len(valid)} images "
                "hold no positive of them). Fix: lower folds.k."
            )
        fold[valid] = f
    return pd.DataFrame({"id": ids, "fold": fold})


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


def parse_folds(folds, k: int) -> list[int]:
    """``--folds`` ("0,3") as sorted fold numbers, each in 0..k-1; None or "" means every fold.

    Example:
        >>> parse_folds("3,0", k=5)
        [0, 3]
    """
    if folds is None or folds == "":
        return list(range(k))
    try:
        wanted = sorted({int(f) for f in str(folds).split(",")})
    except ValueError:
        raise KitError(
            f"expected --folds as comma-separated numbers like 0,3; got {folds!r}. Fix: e.g. --folds 0,3."
        ) from None
    bad = [f for f in wanted if not 0 <= f < k]
    if bad:
        raise KitError(
            f"expected fold numbers 0..{k - 1} (folds.k={k}); got {bad}. Fix: pass folds between 0 and {k - 1}."
        )
    return wanted
