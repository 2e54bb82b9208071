"""The report's errors section: the most confidently wrong OOF images ("top losses"), ranked by each image's
cross-entropy of its true label (multilabel: summed over the labels), shown with id, true label, prediction and
its probability, the images read from the run's store.

Example:
    >>> per_image_loss(np.array([1, 0]), np.array([[0.9], [0.8]]), "binary").round(3).tolist()
    [0.105, 1.609]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kit.ingest.store import open_store, read_table
from kit.report.data_section import read_rows
from kit.report.page import Page, pyplot
from kit.report.run_view import RunView, positive_proba

__all__ = ["per_image_loss", "top_losses", "errors_section", "TOP"]

TOP = 16
_EPS = 1e-7


def per_image_loss(target, pred, task: str) -> np.ndarray:
    """Cross-entropy of the true label per row: binary/multilabel -log p (or 1-p) per column, summed; multiclass
    -log p[true class]."""
    pred = np.clip(np.asarray(pred, np.float64).reshape(len(pred), -1), _EPS, 1 - _EPS)
    target = np.asarray(target)
    if task == "multiclass":
        return -np.log(pred[np.arange(len(pred)), target.astype(int)])
    truth = target.reshape(len(pred), -1).astype(float)
    return -(truth * np.log(pred) + (1 - truth) * np.log(1 - pred)).sum(axis=1)


def _labels(view: RunView, rows: np.ndarray, threshold: float | None) -> tuple[list, list, list]:
    """(true label, predicted label, probability of the prediction) of ``rows``, as text."""
    classes, pred, target = view.classes, view.pred[rows], view.target[rows]
    if view.task == "binary":
        p = positive_proba(pred)
        called = p >= (0.5 if threshold is None else threshold)
        return (
            [classes[int(t)] for t in target],
            [classes[int(c)] for c in called],
            [float(v if c else 1 - v) for v, c in zip(p, called)],
        )
    if view.task == "multiclass":
        top = pred.argmax(axis=1)
        return [classes[int(t)] for t in target], [classes[int(c)] for c in top], pred.max(axis=1).tolist()

    def names(row):
        return " ".join(classes[i] for i in np.flatnonzero(row)) or "(none)"

    return [names(t) for t in target], [names(p >= 0.5) for p in pred], pred.max(axis=1).tolist()


def top_losses(view: RunView, n: int = TOP, threshold: float | None = None) -> pd.DataFrame:
    """The ``n`` OOF rows with the highest loss: id, fold, true, predicted, probability (of the prediction), loss."""
    loss = per_image_loss(view.target, view.pred, view.task)
    rows = np.argsort(-loss, kind="stable")[:n]
    true, predicted, proba = _labels(view, rows, threshold)
    return pd.DataFrame(
        {
            "id": view.oof["id"].to_numpy()[rows],
            "fold": view.oof["fold"].to_numpy()[rows],
            "true": true,
            "predicted": predicted,
            "probability": proba,
            "loss": loss[rows],
        }
    )


def _grid(page: Page, view: RunView, frame: pd.DataFrame) -> str:
    if view.store is None or not view.store.exists():
        return page.p(f"images not shown: the run's store {view.store} is not here.", "note")
    with open_store(view.store) as h5:
        index = pd.Series(np.arange(len(h5["train/ids"])), index=read_table(h5, "train")["id"])
        found = frame["id"].isin(index.index)
        images = read_rows(h5, "train", index[frame.loc[found, "id"]].to_numpy())
    plt = pyplot()
    cols = 4
    nrows = max(1, -(-len(images) // cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(2.6 * cols, 2.9 * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, image, (_, row) in zip(axes.ravel(), images, frame[found].iterrows()):
        ax.imshow(image[:, :, 0] if image.shape[-1] == 1 else image, cmap="gray" if image.shape[-1] == 1 else None)
        ax.set_title(
            f"{str(row['id'])[:18]}\ntrue {str(row['true'])[:16]}\npred {str(row['predicted'])[:16]} "
            f"{row['probability']:.2f}",
            fontsize=7,
        )
    return page.figure(fig, f"{view.name}_top_losses", "most confidently wrong OOF images (highest loss first)")


def errors_section(page: Page, views: list[RunView], thresholds: dict | None = None) -> None:
    """Add the ``errors`` section; ``thresholds`` {run name: binary threshold} labels binary predictions."""
    parts = []
    for view in views:
        if len(views) > 1:
            parts.append(page.h3(view.name))
        frame = top_losses(view, threshold=(thresholds or {}).get(view.name))
        parts += [
            page.p(f"the {len(frame)} OOF images with the highest loss of their true label ({view.oof_source})."),
            _grid(page, view, frame),
            page.table(frame),
        ]
    page.add("errors", "Top losses", parts)
