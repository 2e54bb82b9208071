"""Averaging predictions over folds (and blend members): the mean of probabilities, or of per-column ranks.

Ranks ignore differences in calibration between folds; they are not probabilities, so only adapters scored by
column orders (AUCs) with probability submissions may average them (``Adapter.check_rank_average``).

Example:
    >>> average_folds(np.array([[0.1, 0.9], [0.3, 0.7]])).round(3).tolist()
    [0.2, 0.8]
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from kit.config import FOLD_AVERAGES
from kit.errors import KitError

__all__ = ["average_folds", "rank_normalise", "rank_columns"]


def rank_normalise(pred) -> np.ndarray:
    """Ranks of ``pred`` scaled to [0, 1] (ties share their average rank); order-preserving, so AUC is unchanged."""
    pred = np.asarray(pred, dtype=np.float64)
    if pred.size <= 1:
        return np.full(pred.shape, 0.5)
    return (rankdata(pred) - 1.0) / (pred.size - 1.0)


def rank_columns(pred) -> np.ndarray:
    """Each column of a (rows, outputs) matrix rank-normalised (``rank_normalise``)."""
    pred = np.asarray(pred, dtype=np.float64)
    return np.column_stack([rank_normalise(column) for column in pred.T]) if pred.ndim == 2 else rank_normalise(pred)


def average_folds(test_matrix, method: str = "mean") -> np.ndarray:
    """Average fold predictions of shape (n_folds, n_test) or (n_folds, n_test, outputs) into one per test row.

    ``mean`` averages the probabilities; ``rank`` averages each fold's rank-normalised predictions (in [0, 1],
    per output column), which ignores differences in calibration between folds.

    Example:
        >>> average_folds(np.array([[0.1, 0.9], [0.3, 0.7]])).round(3).tolist()
        [0.2, 0.8]
    """
    matrix = np.asarray(test_matrix, dtype=np.float64)
    if matrix.ndim not in (2, 3) or matrix.shape[0] == 0:
        raise KitError(
            f"expected fold predictions of shape (n_folds, n_test[, outputs]), got shape {matrix.shape}. "
            "Fix: stack one prediction array per fold."
        )
    if method not in FOLD_AVERAGES:
        raise KitError(
            f"unknown fold average {method!r}; known: {', '.join(FOLD_AVERAGES)}. Fix: --set predict.fold_average=mean."
        )
    if not np.isfinite(matrix).all():
        raise KitError("fold predictions contain NaN/inf. Fix: retrain the fold that produced them.")
    if method == "rank":  # callers check the adapter allows it (Adapter.check_rank_average)
        matrix = np.stack([rank_columns(fold) for fold in matrix])
    return matrix.mean(axis=0)
