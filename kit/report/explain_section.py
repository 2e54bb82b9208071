"""The report's explanations section: Grad-CAM overlays for a sample of true positives, false positives and false
negatives per class, each OOF image explained by the model of the fold that held it out.

Grad-CAM itself lives in ``kit.report.gradcam`` (``grad_cam(model, images, class_index)`` -> (N, H, W) heatmaps
in [0, 1], ``overlay(images, heatmaps)`` -> uint8 images); ``explain`` is the one place that calls it, imported when
used, so the rest of the report works without it and the section says why when it cannot be drawn.

Example:
    >>> explanations_section(page, [load_view("runs/pcam/A")], {"A": 0.42})  # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util

import numpy as np

from kit.report.data_section import read_rows
from kit.report.page import Page, pyplot
from kit.report.run_view import RunView, positive_proba

__all__ = ["explain", "pick_cases", "explanations_section", "PER_CASE", "MAX_CLASSES"]

PER_CASE = 2  # images per (class, case)
MAX_CLASSES = 6
CASES = ("TP", "FP", "FN")


def explain(model, images: np.ndarray, class_index: int | None) -> np.ndarray:
    """Grad-CAM overlays (uint8, like ``images``) of ``images`` for output ``class_index`` (adapter to
    ``kit.report.gradcam``; raises ImportError when that module is missing)."""
    from kit.report import gradcam

    heatmaps = gradcam.grad_cam(model, images, class_index=class_index)
    return np.asarray(gradcam.overlay(images, heatmaps))


def pick_cases(view: RunView, threshold: float | None = None) -> list[tuple[int, str, np.ndarray]]:
    """(class index, case, OOF rows) for each class and case, the most confident ``PER_CASE`` rows each.

    Binary runs explain the positive class only (at ``threshold``, default 0.5); multiclass at the argmax;
    multilabel at 0.5 per label.
    """
    n = len(view.classes)
    if view.task == "binary":
        score = positive_proba(view.pred)[:, None]
        truth = view.target.reshape(-1, 1).astype(bool)
        called = score >= (0.5 if threshold is None else threshold)
        classes = [1]
    else:
        score = view.pred
        truth = view.target.astype(bool) if view.target.ndim == 2 else np.eye(n, dtype=bool)[view.target]
        called = np.eye(n, dtype=bool)[view.pred.argmax(axis=1)] if view.task == "multiclass" else score >= 0.5
        counts = truth.sum(axis=0)
        classes = sorted(range(n), key=lambda c: -counts[c])[:MAX_CLASSES]
    picked = []
    for c in classes:
        col = 0 if view.task == "binary" else c
        masks = {
            "TP": truth[:, col] & called[:, col],
            "FP": ~truth[:, col] & called[:, col],
            "FN": truth[:, col] & ~called[:, col],
        }
        for case in CASES:
            rows = np.flatnonzero(masks[case])
            order = np.argsort(score[rows, col] if case == "FN" else -score[rows, col], kind="stable")
            picked.append((c, case, rows[order][:PER_CASE]))
    return picked


def _overlays(view: RunView, picked) -> dict[int, np.ndarray]:
    """{OOF row: overlay} for every picked row, each explained by its own fold's model."""
    from kit.ingest.store import open_store, read_table
    from kit.models.build import build_task_model

    cfg = view.run.read_config()
    rows = np.unique(np.concatenate([r for _, _, r in picked] + [np.zeros(0, int)])).astype(int)
    with open_store(view.store) as h5:
        index = {v: i for i, v in enumerate(read_table(h5, "train")["id"])}
        images = read_rows(h5, "train", [index[str(i)] for i in view.oof["id"].to_numpy()[rows]])
    class_of = {int(r): c for c, _, rs in picked for r in rs}
    out, folds = {}, view.oof["fold"].to_numpy()[rows]
    model = None
    for fold in np.unique(folds):
        if model is None:
            model = build_task_model(cfg.model, images.shape[1:], view.task, view.classes)
        model.load_weights(view.run.fold(int(fold)).best_weights)
        for k in np.flatnonzero(folds == fold):
            row = int(rows[k])
            index_out = None if view.task == "binary" else class_of[row]
            out[row] = explain(model, images[k : k + 1], index_out)[0]
    return out


def _figure(page: Page, view: RunView, picked, overlays) -> str:
    plt = pyplot()
    classes = sorted({c for c, _, _ in picked})
    cols = len(CASES) * PER_CASE
    fig, axes = plt.subplots(len(classes), cols, figsize=(1.9 * cols, 2.1 * len(classes)), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for c, case, rows in picked:
        r = classes.index(c)
        for j, row in enumerate(rows):
            ax = axes[r][CASES.index(case) * PER_CASE + j]
            image = overlays[int(row)]
            ax.imshow(image[:, :, 0] if image.shape[-1] == 1 else image, cmap="gray" if image.shape[-1] == 1 else None)
            ax.set_title(f"{view.classes[c][:12]} {case}\n{str(view.oof['id'].iloc[int(row)])[:14]}", fontsize=6)
    return page.figure(
        fig, f"{view.name}_gradcam", f"Grad-CAM per class (rows): {PER_CASE} true positives, false positives, "
        "false negatives each (most confident first)"
    )  # fmt: skip


def explanations_section(page: Page, views: list[RunView], thresholds: dict | None = None) -> None:
    """Add the ``explanations`` section; says "Grad-CAM not available: ..." when it cannot be drawn."""
    parts = []
    for view in views:
        if len(views) > 1:
            parts.append(page.h3(view.name))
        if view.store is None or not view.store.exists():
            parts.append(page.p(f"Grad-CAM not available: the run's store {view.store} is not here.", "note"))
            continue
        if importlib.util.find_spec("kit.report.gradcam") is None:
            parts.append(page.p("Grad-CAM not available: kit.report.gradcam is not installed.", "note"))
            continue
        picked = pick_cases(view, (thresholds or {}).get(view.name))
        try:
            overlays = _overlays(view, picked)
        except ImportError as e:
            parts.append(page.p(f"Grad-CAM not available: {e}.", "note"))
            continue
        except Exception as e:  # an optional view: the rest of the report still gets written
            parts.append(page.p(f"Grad-CAM not available: {type(e).__name__}: {e}", "warn"))
            continue
        parts.append(_figure(page, view, picked, overlays))
    page.add("explanations", "Explanations (Grad-CAM)", parts)
