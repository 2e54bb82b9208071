"""The report's operating-point section.

Binary: a threshold chosen on the OOF predictions, by Youden's J (the threshold maximising sensitivity +
specificity - 1) or, with ``sensitivity``, the highest threshold whose OOF sensitivity reaches it (the least a
threshold has to come down to reach the target, so the best specificity among those that do); a row is called
positive when its probability is >= the threshold. Then the confusion matrix, sensitivity, specificity, precision
and F1 there, and the test predictions' class counts at that threshold. Multiclass: the argmax confusion matrix,
per-class precision, recall and F1 and the test predicted-class counts. Multilabel: the same per label at 0.5.

Example:
    >>> youden_threshold(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.4, 0.9]))
    0.9
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from kit.errors import KitError
from kit.report.page import Page, pyplot
from kit.report.run_view import RunView, positive_proba
from kit.run import pred_matrix

__all__ = [
    "youden_threshold",
    "sensitivity_threshold",
    "OperatingPoint",
    "operating_point",
    "choose_threshold",
    "operating_section",
]


def _roc(target, score):
    from sklearn.metrics import roc_curve

    target, score = np.asarray(target).astype(int), np.asarray(score, np.float64)
    if target.min() == target.max():
        raise KitError(
            f"expected OOF rows of both classes to choose a threshold, got only class {target[0]}. "
            "Fix: check the run's labels (kit ingest) and folds."
        )
    fpr, tpr, thresholds = roc_curve(target, score, drop_intermediate=False)
    return fpr[1:], tpr[1:], thresholds[1:]  # the first point (threshold inf) calls nothing positive


def youden_threshold(target, score) -> float:
    """The threshold maximising Youden's J = sensitivity + specificity - 1 on these rows (ties: the highest)."""
    fpr, tpr, thresholds = _roc(target, score)
    j = tpr - fpr
    return float(thresholds[int(np.argmax(j >= j.max() - 1e-12))])  # ties (to rounding): the highest threshold


def sensitivity_threshold(target, score, sensitivity: float) -> float:
    """The highest threshold whose sensitivity on these rows is >= ``sensitivity`` (in (0, 1]).

    Example:
        >>> sensitivity_threshold([0, 1, 1, 1, 0], [0.2, 0.3, 0.7, 0.8, 0.5], 0.6)
        0.7
    """
    if not 0 < sensitivity <= 1:
        raise KitError(f"expected a sensitivity in (0, 1], got {sensitivity}. Fix: e.g. --sensitivity 0.95.")
    _, tpr, thresholds = _roc(target, score)
    return float(thresholds[int(np.argmax(tpr >= sensitivity - 1e-12))])


@dataclasses.dataclass(frozen=True)
class OperatingPoint:
    threshold: float
    rule: str
    tn: int
    fp: int
    fn: int
    tp: int

    @property
    def sensitivity(self) -> float:
        return self.tp / max(1, self.tp + self.fn)

    @property
    def specificity(self) -> float:
        return self.tn / max(1, self.tn + self.fp)

    @property
    def precision(self) -> float:
        return self.tp / max(1, self.tp + self.fp)

    @property
    def f1(self) -> float:
        return 2 * self.tp / max(1, 2 * self.tp + self.fp + self.fn)


def choose_threshold(target, score, sensitivity: float | None = None) -> tuple[float, str]:
    """(threshold, how it was chosen): Youden's J, or the sensitivity target when given."""
    if sensitivity is None:
        return youden_threshold(target, score), "Youden's J (max sensitivity + specificity - 1) on the OOF rows"
    threshold = sensitivity_threshold(target, score, sensitivity)
    return threshold, f"highest threshold reaching OOF sensitivity >= {sensitivity:g}"


def operating_point(target, score, sensitivity: float | None = None) -> OperatingPoint:
    """The chosen threshold and the OOF confusion counts at it (positive: score >= threshold).

    Example:
        >>> operating_point([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9]).tp
        1
    """
    threshold, rule = choose_threshold(target, score, sensitivity)
    target, called = np.asarray(target).astype(int), np.asarray(score) >= threshold
    return OperatingPoint(
        threshold=threshold,
        rule=rule,
        tn=int(np.sum(~called & (target == 0))),
        fp=int(np.sum(called & (target == 0))),
        fn=int(np.sum(~called & (target == 1))),
        tp=int(np.sum(called & (target == 1))),
    )


def _confusion_figure(page: Page, matrix: np.ndarray, labels, name: str, title: str) -> str:
    plt = pyplot()
    n = len(labels)
    fig, ax = plt.subplots(figsize=(1.6 + 0.55 * n, 1.2 + 0.5 * n))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), value in np.ndenumerate(matrix):
        color = "white" if value > matrix.max() / 2 else "black"
        ax.text(j, i, str(int(value)), ha="center", va="center", fontsize=7, color=color)
    ax.set_xticks(range(n), [str(c)[:14] for c in labels], rotation=60 if n > 3 else 0, ha="right", fontsize=7)
    ax.set_yticks(range(n), [str(c)[:14] for c in labels], fontsize=7)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    return page.figure(fig, name, title)


def _binary(page: Page, view: RunView, sensitivity: float | None) -> list[str]:
    point = operating_point(view.target, positive_proba(view.pred), sensitivity)
    matrix = np.array([[point.tn, point.fp], [point.fn, point.tp]])
    stats = pd.DataFrame(
        {
            "threshold": [point.threshold],
            "sensitivity": [point.sensitivity],
            "specificity": [point.specificity],
            "precision": [point.precision],
            "F1": [point.f1],
        }
    )
    parts = [
        page.p(f"threshold {point.threshold:.4f}: {point.rule} ({view.oof_source}); positive when P >= threshold."),
        page.table(stats),
        _confusion_figure(page, matrix, view.classes, f"{view.name}_confusion", "OOF confusion at the threshold"),
    ]
    if view.test is None:
        return parts + [page.p(f"no test predictions yet. Fix: run `kit predict {view.run.path}`.", "note")]
    called = positive_proba(pred_matrix(view.test)) >= point.threshold
    counts = pd.DataFrame({"class": view.classes, "test images": [int((~called).sum()), int(called.sum())]})
    return parts + [page.p("test predictions at the same threshold:"), page.table(counts)]


def _per_class(page: Page, view: RunView) -> list[str]:
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    n = len(view.classes)
    if view.task == "multiclass":
        labels, rule = view.pred.argmax(axis=1), "argmax"
        matrix = confusion_matrix(view.target, labels, labels=range(n))
        figure = _confusion_figure(page, matrix, view.classes, f"{view.name}_confusion", "OOF confusion (argmax)")
    else:
        labels, rule, figure = (view.pred >= 0.5).astype(int), "0.5 per label", ""
    precision, recall, f1, support = precision_recall_fscore_support(
        view.target, labels, labels=range(n) if view.task == "multiclass" else None, zero_division=0
    )
    table = pd.DataFrame(
        {"class": view.classes, "precision": precision, "recall": recall, "F1": f1, "support": support}
    )
    parts = [page.p(f"predicted class: {rule} ({view.oof_source})."), figure, page.table(table)]
    if view.test is None:
        return parts + [page.p(f"no test predictions yet. Fix: run `kit predict {view.run.path}`.", "note")]
    test = pred_matrix(view.test)
    counts = np.bincount(test.argmax(axis=1), minlength=n) if view.task == "multiclass" else (test >= 0.5).sum(0)
    frame = pd.DataFrame({"class": view.classes, "test images predicted": counts.astype(int)})
    return parts + [page.p(f"test predictions ({rule}):"), page.table(frame)]


def operating_section(page: Page, views: list[RunView], sensitivity: float | None = None) -> None:
    """Add the ``operating-point`` section: one block per run."""
    parts = []
    for view in views:
        if len(views) > 1:
            parts.append(page.h3(view.name))
        parts += _binary(page, view, sensitivity) if view.task == "binary" else _per_class(page, view)
    page.add("operating-point", "Operating point", parts)
