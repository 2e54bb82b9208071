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

__all__ = ["plot_run"]


def plot_run(run: RunFolder, k: int, metric: str = "roc_auc", classes=("0", "1")) -> None:
    """learning_curves.png (loss and validation ``metric`` per epoch, folds 0..k-1) and, when oof.csv exists,
    roc.png (one probability column) or confusion.png (multiclass: one column per class in ``classes``).

    Validation points are joined across the epochs that skip validation (``train.val_every``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_auc) = plt.subplots(1, 2, figsize=(11, 4))
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
            ax_auc.plot(v["epoch"] + 1, v["val_score"], "o-", ms=3, label=f"fold{f}")
    ax_loss.set(xlabel="epoch", ylabel="log loss", title="loss")
    ax_auc.set(xlabel="epoch", ylabel=metric, title=f"validation {metric}")
    for ax in (ax_loss, ax_auc):
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(run.learning_curves_path, dpi=90)
    plt.close(fig)
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
        fig.tight_layout()
        fig.savefig(run.confusion_path, dpi=90)
        plt.close(fig)
    elif pred.shape[1] == 1:
        fpr, tpr, _ = roc_curve(target, pred[:, 0])
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        ax.plot(fpr, tpr, label=f"OOF AUC {roc_auc_score(target, pred[:, 0]):.4f}")
        ax.plot([0, 1], [0, 1], ":", color="grey")
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title=run.name)
        ax.legend(loc="lower right")
        fig.tight_layout()
        fig.savefig(run.roc_path, dpi=90)
        plt.close(fig)
