"""The report's data section, read from the run's store: class balance of the train split, sample images and the
mean image per class, image statistics (shape, per-channel mean and std) and the ingest quarantine by reason.

Large stores are sampled (``SAMPLE`` images for the statistics, ``MEAN_PER_CLASS`` per class for the mean image),
reading rows in increasing order as HDF5 wants.

Example:
    >>> data_section(page, "data/pcam/pcam.h5")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kit.ingest.store import open_store, read_labels, read_quarantine, store_classes
from kit.report.page import Page, pyplot

__all__ = ["data_section", "class_members", "read_rows", "SAMPLE", "MEAN_PER_CLASS", "SAMPLES_PER_CLASS"]

SAMPLE = 2000
MEAN_PER_CLASS = 200
SAMPLES_PER_CLASS = 6
MAX_CLASSES = 16  # sample grids show at most this many classes


def class_members(labels: np.ndarray, n_classes: int) -> list[np.ndarray]:
    """Row indices of each class: its label (class indices) or its column set (multi-hot rows).

    Example:
        >>> [m.tolist() for m in class_members(np.array([1, 0, 1]), 2)]
        [[1], [0, 2]]
    """
    if labels.ndim == 2:
        return [np.flatnonzero(labels[:, c]) for c in range(labels.shape[1])]
    return [np.flatnonzero(labels == c) for c in range(n_classes)]


def read_rows(h5, split: str, rows) -> np.ndarray:
    """Images of ``rows`` (any order, no repeats) from a store, in the order given."""
    rows = np.asarray(rows, np.int64)
    if rows.size == 0:
        return np.zeros((0, *h5[f"{split}/images"].shape[1:]), np.uint8)
    order = np.argsort(rows)
    images = h5[f"{split}/images"][rows[order]]
    out = np.empty_like(images)
    out[order] = images
    return out


def _pick(rows: np.ndarray, n: int, rng) -> np.ndarray:
    return np.sort(rng.choice(rows, size=min(n, len(rows)), replace=False)) if len(rows) else rows


def _show(ax, image) -> None:
    ax.imshow(image[:, :, 0] if image.shape[-1] == 1 else image, cmap="gray" if image.shape[-1] == 1 else None)
    ax.set_xticks([])
    ax.set_yticks([])


def _balance(page: Page, classes, counts, task: str) -> list[str]:
    plt = pyplot()
    frame = pd.DataFrame({"class": classes, "images": counts, "share": counts / max(1, counts.sum())})
    fig, ax = plt.subplots(figsize=(max(4, 0.5 * len(classes) + 2), 3))
    ax.bar(range(len(classes)), counts, color="#4c72b0")
    ax.set_xticks(range(len(classes)), classes, rotation=60 if len(classes) > 4 else 0, ha="right", fontsize=7)
    title = "class balance (train)" + (" - labels per class" if task == "multilabel" else "")
    ax.set(ylabel="train images", title=title)
    return [page.h3("Class balance"), page.figure(fig, "class_balance", "train images per class"), page.table(frame)]


def _grids(page: Page, h5, members, classes, rng) -> list[str]:
    plt = pyplot()
    shown = [c for c in range(len(classes)) if len(members[c])][:MAX_CLASSES]
    if not shown:
        return [page.p("no labelled train images to show.", "note")]
    fig, axes = plt.subplots(
        len(shown), SAMPLES_PER_CLASS, figsize=(1.3 * SAMPLES_PER_CLASS, 1.35 * len(shown)), squeeze=False
    )
    means = []
    for r, c in enumerate(shown):
        rows = _pick(members[c], SAMPLES_PER_CLASS, rng)
        images = read_rows(h5, "train", rows)
        for j, ax in enumerate(axes[r]):
            if j < len(images):
                _show(ax, images[j])
            else:
                ax.axis("off")
        axes[r][0].set_ylabel(str(classes[c])[:14], fontsize=7)
        means.append(read_rows(h5, "train", _pick(members[c], MEAN_PER_CLASS, rng)).astype(np.float64).mean(axis=0))
    grid = page.figure(fig, "samples_per_class", f"{SAMPLES_PER_CLASS} random train images per class (rows)")
    cols = min(6, len(shown))
    nrows = -(-len(shown) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(1.8 * cols, 1.9 * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, c, mean in zip(axes.ravel(), shown, means):
        _show(ax, np.clip(mean, 0, 255).astype(np.uint8))
        ax.set_title(str(classes[c])[:18], fontsize=7)
    mean_fig = page.figure(fig, "mean_image_per_class", f"mean image per class (up to {MEAN_PER_CLASS} images each)")
    return [page.h3("Sample images"), grid, page.h3("Mean image per class"), mean_fig]


def _statistics(page: Page, h5, rng) -> list[str]:
    n_train, n_test = len(h5["train/images"]), len(h5["test/images"]) if "test/images" in h5 else 0
    shape = tuple(int(v) for v in h5["train/images"].shape[1:])
    sample = read_rows(h5, "train", _pick(np.arange(n_train), SAMPLE, rng)).astype(np.float64)
    channels = ["R", "G", "B"] if shape[-1] == 3 else [str(c) for c in range(shape[-1])]
    frame = pd.DataFrame(
        {
            "channel": channels,
            "mean": sample.mean(axis=(0, 1, 2)) if len(sample) else np.nan,
            "std": sample.std(axis=(0, 1, 2)) if len(sample) else np.nan,
        }
    )
    note = (
        f"image shape {'x'.join(map(str, shape))} (H x W x C, uint8); {n_train} train and {n_test} test images; "
        f"statistics of {len(sample)} train images, pixel values 0-255."
    )
    return [page.h3("Image statistics"), page.p(note), page.table(frame, "{:.2f}")]


def _quarantine(page: Page, store: Path) -> list[str]:
    table = read_quarantine(store)
    if table.empty:
        return [page.h3("Ingest quarantine"), page.p("nothing was quarantined at ingest: every file was used.")]
    counts = table.groupby(["split", "reason"]).size().reset_index(name="files")
    examples = table.groupby(["split", "reason"])["id"].first().reset_index(name="example id")
    frame = counts.merge(examples, on=["split", "reason"]).sort_values("files", ascending=False)
    return [
        page.h3("Ingest quarantine"),
        page.p(f"{len(table)} files or rows could not be used at ingest; by reason:"),
        page.table(frame),
    ]


def data_section(page: Page, store) -> None:
    """Add the ``data`` section for ``store`` (a path; None or missing: the section says why it is empty)."""
    title = "Data"
    if store is None or not Path(store).exists():
        page.add(
            "data",
            title,
            page.p(
                f"expected the run's store at {store}, found none (env.json names it). Fix: ingest it again "
                "(`kit ingest`) or run the report where the store is.",
                "warn",
            ),
        )
        return
    rng = np.random.default_rng(0)
    with open_store(store) as h5:
        task, classes = store_classes(h5)
        labels = read_labels(h5)
        members = class_members(labels, len(classes))
        counts = np.array([len(m) for m in members])
        parts = [page.p(f"store {store}: {task}, {len(classes)} classes.")]
        parts += _balance(page, list(classes), counts, task)
        parts += _grids(page, h5, members, list(classes), rng)
        parts += _statistics(page, h5, rng)
    parts += _quarantine(page, Path(store))
    page.add("data", title, parts)
