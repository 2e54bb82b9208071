"""Caruana hill climbing (greedy forward selection of blend members, with replacement) and its honest score.

Weights chosen on the out-of-fold rows and scored on those same rows overstate the blend: with many members and
few rows the climb fits noise. ``cross_fit`` scores it the honest way, by 2-way cross-fitting over fold halves:
the folds are split in two halves (``fold_halves``), weights are climbed on one half and applied to the other, and
the reverse; the honest score is the score of those held-out predictions pooled (every row once). The metric is a
parameter (``score(target, pred)``, better when higher unless ``higher_is_better=False``), so nothing here knows
about any one metric. Member predictions are (rows,) vectors or (rows, outputs) matrices.

Example:
    >>> from sklearn.metrics import roc_auc_score
    >>> target = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    >>> oof = np.array([[0.1, 0.9, 0.2, 0.8, 0.3, 0.7, 0.4, 0.6], [0.5, 0.4, 0.5, 0.6, 0.4, 0.6, 0.5, 0.5]])
    >>> hill_climb(target, oof, roc_auc_score).weights.tolist()
    [1.0, 0.0]
    >>> cross_fit(target, oof, folds=[0, 0, 1, 1, 2, 2, 3, 3], score=roc_auc_score).score
    1.0
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from kit.errors import KitError

__all__ = ["HillFit", "CrossFit", "hill_climb", "fold_halves", "cross_fit"]

Score = Callable[[np.ndarray, np.ndarray], float]


@dataclasses.dataclass(frozen=True)
class HillFit:
    """Selection counts per member (weights = counts / total) and one history entry per step."""

    counts: np.ndarray
    history: list[dict]

    @property
    def weights(self) -> np.ndarray:
        return self.counts / self.counts.sum()


@dataclasses.dataclass(frozen=True)
class CrossFit:
    """The held-out blend of every row (each half blended with the other half's weights), its pooled score, and
    per half: the folds it holds, the folds its weights were climbed on, those weights and the half's own score."""

    pred: np.ndarray
    score: float
    halves: list[dict]


def hill_climb(
    target,
    oof,
    score: Score,
    iterations: int = 50,
    names: Sequence[str] | None = None,
    higher_is_better: bool = True,
) -> HillFit:
    """Start from the best single member, then add (with replacement) whichever member improves ``score`` of the
    equal-weight average of the selections most; stop after ``iterations`` additions or when none helps.

    ``oof`` has shape (n_members, n_rows[, outputs]). Example: ``hill_climb(y, np.stack([a, b]), roc_auc_score)``.
    """
    target, oof = np.asarray(target), np.asarray(oof, dtype=np.float64)
    names = list(names) if names is not None else [str(i) for i in range(len(oof))]
    sign = 1.0 if higher_is_better else -1.0  # climb on sign * score: always "higher is better" below
    scores = [score(target, p) for p in oof]
    best = int(np.argmax([sign * v for v in scores]))
    counts = np.zeros(len(oof), np.int64)
    counts[best] = 1
    total, current = oof[best].copy(), scores[best]
    history = [{"step": 0, "added": names[best], "oof_score": current}]
    for step in range(1, iterations + 1):
        n = counts.sum() + 1
        trial = [score(target, (total + p) / n) for p in oof]
        pick = int(np.argmax([sign * v for v in trial]))
        if sign * trial[pick] <= sign * current + 1e-12:  # no strict gain: more steps would only shuffle ties
            break
        counts[pick] += 1
        total += oof[pick]
        current = trial[pick]
        history.append({"step": step, "added": names[pick], "oof_score": current})
    return HillFit(counts, history)


def fold_halves(folds) -> tuple[np.ndarray, np.ndarray]:
    """The distinct fold numbers split in two halves (alternate folds of the sorted list), each fold in one half.

    Example: ``fold_halves([3, 0, 1, 2, 4])`` gives ``(array([0, 2, 4]), array([1, 3]))``.
    """
    distinct = np.unique(np.asarray(folds))
    if len(distinct) < 2:
        raise KitError(
            f"expected at least 2 folds to cross-fit hill-climbing weights over fold halves, got {distinct.tolist()}. "
            "Fix: blend runs trained with folds.k >= 2, or use --method mean."
        )
    # Alternate folds rather than first/second half: folds are exchangeable, and this keeps both halves near
    # the same size for any k.
    return distinct[0::2], distinct[1::2]


def cross_fit(
    target,
    oof,
    folds,
    score: Score,
    iterations: int = 50,
    names: Sequence[str] | None = None,
    higher_is_better: bool = True,
) -> CrossFit:
    """Climb weights on one fold half, blend the other half with them, and the reverse; score the pooled blend.

    ``folds`` gives each row's fold (the runs' shared folds.csv). ``CrossFit.score`` is ``score(target, pred)``
    over all rows, where ``pred`` of a row in half A uses weights climbed only on the rows of half B (and vice
    versa): no row's prediction was chosen by looking at that row's label.
    """
    target, oof, folds = np.asarray(target), np.asarray(oof, dtype=np.float64), np.asarray(folds)
    names = list(names) if names is not None else [str(i) for i in range(len(oof))]
    first, second = fold_halves(folds)
    pred = np.full(oof.shape[1:], np.nan)
    halves = []
    for held, fitted_on in ((first, second), (second, first)):
        fit_rows, held_rows = np.isin(folds, fitted_on), np.isin(folds, held)
        fit = hill_climb(target[fit_rows], oof[:, fit_rows], score, iterations, names, higher_is_better)
        pred[held_rows] = np.tensordot(fit.weights, oof[:, held_rows], axes=1)
        halves.append(
            {
                "folds": held.tolist(),
                "fitted_on": fitted_on.tolist(),
                "weights": {n: float(w) for n, w in zip(names, fit.weights)},
                "oof_score": score(target[held_rows], pred[held_rows]),
            }
        )
    return CrossFit(pred, score(target, pred), halves)
