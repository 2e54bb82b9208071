"""The report's cross-validation section: a per-fold table (score of the run's metric, best epoch, epochs, minutes,
how the fold stopped), learning curves, OOF ROC and precision-recall curves (one-vs-rest per class for multi-class
runs), a calibration curve and the TTA gain (metrics.json's ``oof_score`` against predict.json's
``oof_score_tta``).

Example:
    >>> cv_section(page, [load_view("runs/pcam/A")])  # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kit.metrics import get_metric
from kit.report.page import Page, pyplot
from kit.report.run_view import RunView, positive_proba
from kit.train.plots import learning_curves_figure

__all__ = ["cv_section", "fold_table", "one_vs_rest", "tta_gain"]

MAX_CURVES = 12  # classes drawn in the one-vs-rest curves


def fold_table(view: RunView) -> pd.DataFrame:
    """One row per configured fold: score, best epoch, epochs, minutes, stopped ("not trained" when missing)."""
    rows = []
    for k in range(view.k):
        fold = view.run.fold(k)
        row = {"fold": k, view.metrics.metric: view.metrics.fold_score.get(k, np.nan)}
        if fold.is_done():
            done = fold.read_done()
            row |= {"best epoch": done.best_epoch + 1, "epochs": done.epochs, "minutes": done.minutes}
            row["stopped"] = done.stopped
        else:
            row |= {"best epoch": None, "epochs": None, "minutes": None, "stopped": "not trained"}
        rows.append(row)
    return pd.DataFrame(rows)


def one_vs_rest(view: RunView) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(label, 0/1 truth, score) per curve: the positive class of a binary run, else each class against the rest."""
    if view.task == "binary":
        return [(view.classes[-1], view.target.astype(int), positive_proba(view.pred))]
    truth = view.target if view.target.ndim == 2 else np.eye(len(view.classes), dtype=int)[view.target]
    return [(str(c), truth[:, i], view.pred[:, i]) for i, c in enumerate(view.classes)][:MAX_CURVES]


def tta_gain(view: RunView) -> pd.DataFrame | None:
    """plain OOF score, TTA OOF score and the gain in the metric's direction; None without ``kit predict --oof``."""
    tta = view.record.oof_score_tta if view.record is not None else None
    plain = view.metrics.oof_score
    if tta is None or plain is None:
        return None
    sign = 1 if get_metric(view.metrics.metric).higher_is_better else -1
    return pd.DataFrame(
        {
            "metric": [view.metrics.metric],
            "OOF (no TTA)": [plain],
            f"OOF (TTA {view.record.oof_tta})": [tta],
            "gain": [sign * (tta - plain)],
        }
    )


def _learning_curves(page: Page, view: RunView) -> str:
    fig = learning_curves_figure(view.run, view.k, view.metrics.metric)
    return page.figure(fig, f"{view.name}_learning_curves", "learning curves per fold")


def _roc_pr(page: Page, view: RunView) -> str:
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    plt = pyplot()
    fig, (ax_roc, ax_pr) = plt.subplots(1, 2, figsize=(10, 4.2))
    for label, truth, score in one_vs_rest(view):
        if truth.min() == truth.max():  # one class only among the OOF rows: no curve
            continue
        fpr, tpr, _ = roc_curve(truth, score)
        ax_roc.plot(fpr, tpr, lw=1.2, label=f"{label[:16]} AUC {roc_auc_score(truth, score):.3f}")
        precision, recall, _ = precision_recall_curve(truth, score)
        ax_pr.plot(recall, precision, lw=1.2, label=f"{label[:16]} AP {average_precision_score(truth, score):.3f}")
    ax_roc.plot([0, 1], [0, 1], ":", color="grey")
    ax_roc.set(xlabel="false positive rate", ylabel="true positive rate", title="OOF ROC")
    ax_pr.set(xlabel="recall", ylabel="precision", title="OOF precision-recall", ylim=(0, 1.02))
    for ax in (ax_roc, ax_pr):
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=6, loc="lower right" if ax is ax_roc else "lower left")
    what = "positive class" if view.task == "binary" else "one-vs-rest, per class"
    return page.figure(fig, f"{view.name}_roc_pr", f"OOF ROC and precision-recall ({what}; {view.oof_source})")


def _calibration(page: Page, view: RunView) -> str:
    from sklearn.calibration import calibration_curve

    plt = pyplot()
    if view.task == "binary":
        truth, score, what = view.target.astype(int), positive_proba(view.pred), "P(positive)"
    elif view.task == "multiclass":
        truth = (view.pred.argmax(axis=1) == view.target).astype(int)
        score, what = view.pred.max(axis=1), "top-class confidence (fraction correct)"
    else:
        truth, score, what = view.target.ravel().astype(int), view.pred.ravel(), "every label column pooled"
    fig, (ax, ax_hist) = plt.subplots(1, 2, figsize=(9, 3.6))
    if truth.min() != truth.max():
        observed, predicted = calibration_curve(truth, score, n_bins=10, strategy="uniform")
        ax.plot(predicted, observed, "o-", label="OOF")
    ax.plot([0, 1], [0, 1], ":", color="grey", label="perfect")
    ax.set(xlabel="predicted probability", ylabel="observed frequency", title=f"calibration: {what}")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    ax_hist.hist(score, bins=20, range=(0, 1), color="#4c72b0")
    ax_hist.set(xlabel="predicted probability", ylabel="OOF rows", title="predictions")
    return page.figure(fig, f"{view.name}_calibration", f"calibration ({what}; 10 uniform bins) and histogram")


def cv_section(page: Page, views: list[RunView]) -> None:
    """Add the ``cv`` section: one block per run."""
    parts = []
    for view in views:
        if len(views) > 1:
            parts.append(page.h3(view.name))
        score = view.metrics.oof_score
        parts.append(
            page.p(
                f"{view.name}: {view.task}, metric {view.metrics.metric}, OOF score "
                f"{'n/a' if score is None else f'{score:.4f}'} over {len(view.oof)} rows, {view.k} folds."
            )
        )
        parts.append(page.table(fold_table(view)))
        gain = tta_gain(view)
        parts.append(page.h3("TTA gain"))
        if gain is None:
            parts.append(page.p(f"no TTA OOF score yet. Fix: run `kit predict {view.run.path} --oof`.", "note"))
        else:
            parts.append(page.table(gain))
        parts += [_learning_curves(page, view), _roc_pr(page, view), _calibration(page, view)]
    page.add("cv", "Cross-validation", parts)
