"""What a run reports: the OOF table and metrics.json, a summary table, plots, and env.json.

Example:
    >>> from kit.train.summary import format_table
    >>> print(format_table([["fold", "auc"], ["0", "0.91"]]))
    fold  auc
    0     0.91
"""
from __future__ import annotations

import dataclasses
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score, roc_curve

import kit
from kit.train.callbacks import write_json
from kit.run import fold_dir, is_fold_done

__all__ = ["summarise_run", "plot_run", "environment", "format_table", "RunSummary", "update_metrics"]


@dataclasses.dataclass
class RunSummary:
    fold_auc: dict
    oof_auc: float | None
    missing: list
    table: str


def format_table(rows: list[list[str]]) -> str:
    widths = [max(len(str(r[c])) for r in rows) for c in range(len(rows[0]))]
    return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows)


def update_metrics(run: Path, **values) -> dict:
    """Merge ``values`` into the run's metrics.json (training and prediction each add their own keys)."""
    path = Path(run) / "metrics.json"
    metrics = json.loads(path.read_text()) if path.exists() else {}
    metrics.update(values)
    write_json(path, metrics)
    return metrics


def summarise_run(run: Path, folds: pd.DataFrame, labels: np.ndarray, k: int, changed: bool = True) -> RunSummary:
    """Collect the finished folds; once all k are done, write oof.csv (every train id once) and the OOF AUC.

    With ``changed=False`` (no fold trained since the last summary) an existing oof.csv and metrics.json are
    left as they are, so ``kit predict --oof``'s TTA scores survive a rerun of ``kit train``.
    """
    rows = [["fold", "val AUC", "best epoch", "epochs", "minutes", "stopped"]]
    fold_auc, missing = {}, []
    oof = np.full(len(folds), np.nan)
    for f in range(k):
        if not is_fold_done(run, f):
            missing.append(f)
            rows.append([str(f), "-", "-", "-", "-", "not trained"])
            continue
        done = json.loads((fold_dir(run, f) / "done.json").read_text())
        fold_auc[f] = done["best_auc"]
        oof[folds["fold"].to_numpy() == f] = np.load(fold_dir(run, f) / "valid_pred.npy")
        rows.append([str(f), f"{done['best_auc']:.4f}", str(done["best_epoch"]), str(done["epochs"]),
                     f"{done['minutes']:.1f}", done["stopped"]])
    oof_auc = None
    if not missing and not changed and (Path(run) / "oof.csv").exists():
        oof_auc = json.loads((Path(run) / "metrics.json").read_text())["oof_auc"]
        rows.append(["OOF", f"{oof_auc:.4f}", "", "", "", "all folds"])
        return RunSummary(fold_auc, oof_auc, missing, format_table(rows))
    if not missing:
        table = pd.DataFrame({"id": folds["id"], "fold": folds["fold"], "target": labels.astype(int), "pred": oof})
        table.to_csv(Path(run) / "oof.csv", index=False)
        oof_auc = float(roc_auc_score(labels, oof))
        rows.append(["OOF", f"{oof_auc:.4f}", "", "", "", "all folds"])
    update_metrics(run, metric="roc_auc", folds={str(f): a for f, a in fold_auc.items()}, oof_auc=oof_auc,
                   oof_tta="none", complete=not missing, missing_folds=missing)
    return RunSummary(fold_auc, oof_auc, missing, format_table(rows))


def plot_run(run: Path) -> None:
    """learning_curves.png (loss and validation AUC per epoch, every fold) and roc.png (OOF ROC, when complete)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = Path(run)
    fig, (ax_loss, ax_auc) = plt.subplots(1, 2, figsize=(11, 4))
    for history in sorted(run.glob("fold*/history.csv")):
        h = pd.read_csv(history)
        ax_loss.plot(h["epoch"] + 1, h["loss"], label=f"{history.parent.name} train")
        if "val_loss" in h:
            ax_loss.plot(h["epoch"] + 1, h["val_loss"], "o--", ms=3, label=f"{history.parent.name} valid")
        if "val_auc" in h:
            ax_auc.plot(h["epoch"] + 1, h["val_auc"], "o-", ms=3, label=history.parent.name)
    ax_loss.set(xlabel="epoch", ylabel="log loss", title="loss")
    ax_auc.set(xlabel="epoch", ylabel="ROC AUC", title="validation AUC")
    for ax in (ax_loss, ax_auc):
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(run / "learning_curves.png", dpi=90)
    plt.close(fig)
    if (run / "oof.csv").exists():
        oof = pd.read_csv(run / "oof.csv")
        fpr, tpr, _ = roc_curve(oof["target"], oof["pred"])
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        ax.plot(fpr, tpr, label=f"OOF AUC {roc_auc_score(oof['target'], oof['pred']):.4f}")
        ax.plot([0, 1], [0, 1], ":", color="grey")
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title=run.name)
        ax.legend(loc="lower right")
        fig.tight_layout()
        fig.savefig(run / "roc.png", dpi=90)
        plt.close(fig)


def environment(device, precision: str, store, max_minutes) -> dict:
    """Versions, git commit, device and precision: enough to tell two runs' conditions apart."""
    versions = {}
    for package in ("keras", "tensorflow", "jax", "albumentations", "numpy", "h5py", "scikit-learn", "opencv-python-headless"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return {
        "kit_version": kit.__version__,
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "backend": device.backend,
        "device": {"kind": device.kind, "count": device.count, "names": list(device.names)},
        "precision": precision,
        "store": str(store),
        "max_minutes": max_minutes,
    }


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(kit.__file__).parent, capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None
