"""The plots training leaves in a run folder: learning curves of every fold and, once every fold is done, the OOF
ROC curve (binary) or confusion matrix (multiclass).

Example:
    >>> from kit.run import RunFolder
    >>> plot_run(RunFolder("runs/pcam/20261124-101500_compact_cnn"), k=5)  # doctest: +SKIP
"""

from __future__ import annotations

import pandas as pd
from sklearn.metrics import ConfusionMatrixDisplay, roc_auc_score, roc_curve

from kit.run import RunFolder, pred_matrix, target_values

__all__ = ["plot_run", "learning_curves_figure"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def learning_curves_figure(run: RunFolder, k: int, metric: str):
    """The loss (train and validation) and the validation ``metric`` per epoch of folds 0..k-1, as a figure; the
    validation points are joined across the epochs that skip validation (``train.val_every``). ``kit report``
    shows the same figure."""
    plt = _pyplot()
    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(11, 4))
    for f in range(k):
        path = run.fold(f).history
        if not path.exists():
            continue
        h = pd.read_csv(path).rename(columns={"val_auc": "val_score"})  # runs made when every score was AUC
        ax_loss.plot(h["epoch"] + 1, h["loss"], label=f"fold{f} train")
        if "val_score" in h:
            # NaN rows are epochs without validation: drop them so the line joins the validated epochs
            v = h.dropna(subset=["val_score"])
            ax_loss.plot(v["epoch"] + 1, v["val_loss"], "o--", ms=3, label=f"fold{f} valid")
            ax_val.plot(v["epoch"] + 1, v["val_score"], "o-", ms=3, label=f"fold{f}")
    ax_loss.set(xlabel="epoch", ylabel="log loss", title="loss")
    ax_val.set(xlabel="epoch", ylabel=metric, title=f"validation {metric}")
    for ax in (ax_loss, ax_val):
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    return fig


def _save(fig, path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    _pyplot().close(fig)


def plot_run(run: RunFolder, k: int, metric: str = "roc_auc", classes=("0", "1")) -> None:
    """learning_curves.png (``learning_curves_figure``) and, when oof.csv exists, roc.png (one probability column)
    or confusion.png (multiclass: one column per class in ``classes``)."""
    plt = _pyplot()
    fig = learning_curves_figure(run, k, metric)
    _save(fig, run.learning_curves_path)
    if not run.oof_path.exists():
        return
    oof = run.read_oof()
    pred, target = pred_matrix(oof), target_values(oof)
    if pred.shape[1] > 1 and target.ndim == 1:
        fig, ax = plt.subplots(figsize=(1.2 + 0.55 * len(classes), 1 + 0.5 * len(classes)))
        ConfusionMatrixDisplay.from_predictions(
            target, pred.argmax(axis=1), labels=range(len(classes)), display_labels=list(classes), ax=ax,
            xticks_rotation="vertical", colorbar=False,
        )  # fmt: skip
        ax.set_title(f"{run.name}: OOF (rows: true class)", fontsize=9)
        _save(fig, run.confusion_path)
    elif pred.shape[1] == 1:
        fpr, tpr, _ = roc_curve(target, pred[:, 0])
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        ax.plot(fpr, tpr, label=f"OOF AUC {roc_auc_score(target, pred[:, 0]):.4f}")
        ax.plot([0, 1], [0, 1], ":", color="grey")
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title=run.name)
        ax.legend(loc="lower right")
        _save(fig, run.roc_path)
