"""Test-time augmentation and prediction with every fold model of a run.

TTA averages the model's probabilities over label-preserving views of each image: the 8 dihedral views (``d4``),
the image and its mirror (``hflip``), or the image alone (``none``); an adapter says which views keep its labels
(``kit.config.check_tta``). The views of a batch go through the model
together as one batch of ``8 * B`` images, not one view or one image at a time. The same procedure can score the
out-of-fold rows (``oof=True``), so the CV score and the test predictions are made the same way.

Example:
    >>> from kit.infer.predict import predict_run
    >>> result = predict_run("runs/pcam/20261124-101500_compact_cnn", tta="d4", oof=True)  # doctest: +SKIP
    >>> result.test_pred.head(2)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from kit.adapters.registry import get_adapter
from kit.config import TTA_MODES, check_tta
from kit.errors import KitError
from kit.infer.fold_average import average_folds
from kit.ingest.store import open_store, read_table, store_classes
from kit.metrics import get_metric, n_outputs
from kit.models.build import build_task_model
from kit.run import PredictRecord, RunFolder, pred_columns, target_values
from kit.train.augment import D4_VIEWS, dihedral_stack
from kit.train.folds import fold_rows
from kit.train.loader import StoreDataset

__all__ = ["predict_run", "predict_tta", "tta_views", "PredictResult", "TTA_MODES"]

HFLIP = 6  # the dihedral element "h" (kit.train.augment.D4_ELEMENTS): a left-right mirror


@dataclasses.dataclass
class PredictResult:
    run_dir: Path
    tta: str
    folds: list
    test_pred: pd.DataFrame  # id, then the predictions (fold average): pred, or one column per class
    oof_score: float | None = None
    oof_score_tta: float | None = None
    metric: str = "roc_auc"


def tta_views(tta: str) -> tuple[int, ...]:
    """The dihedral elements (``kit.train.augment.dihedral``) a TTA mode averages over.

    Example:
        >>> tta_views("hflip")
        (0, 6)
    """
    if tta not in TTA_MODES:
        raise KitError(f"expected --tta one of {', '.join(TTA_MODES)}; got {tta!r}. Fix: e.g. --tta {TTA_MODES[0]}.")
    return {"d4": tuple(D4_VIEWS), "hflip": (0, HFLIP), "none": (0,)}[tta]


def predict_tta(model: keras.Model, images: np.ndarray, views=(0,)) -> np.ndarray:
    """Mean probabilities (B, outputs) over ``views`` (dihedral group elements) of one batch, in one forward pass."""
    stacked = dihedral_stack(images, views) if len(views) > 1 else images
    out = np.asarray(model.predict_on_batch(stacked), np.float64).reshape(len(views), len(images), -1)
    return out.mean(axis=0)


def predict_rows(model, store, split: str, rows, views, batch_size: int, desc: str = "") -> np.ndarray:
    data = StoreDataset(store, split, rows, batch_size, labels=False)
    # a bar only when described, and only on a terminal (None): a log file gets no carriage-return redraws
    batches = tqdm(range(len(data)), desc=desc, leave=False, disable=None if desc else True)
    return np.concatenate([predict_tta(model, data[b], views) for b in batches])


def predict_run(
    run_dir, tta: str | None = None, oof: bool = False, store=None, batch_size: int = 64, force: bool = False
) -> PredictResult:
    """Predict the test split with every finished fold (and the OOF rows when ``oof``); write the results.

    Writes ``test_fold{k}.npy``, ``test_pred.csv`` (id, pred: fold average), ``predict.json`` and, with ``oof``,
    ``oof_tta.csv`` (the OOF rows predicted the same way as the test rows). Skips the work when the same TTA was
    already applied with the same folds, none trained again since (``PredictRecord.fold_stamps``), unless ``force``.
    """
    run = RunFolder(run_dir)
    cfg = run.read_config()
    tta = check_tta(get_adapter(cfg.competition), tta or cfg.predict.tta)
    views = tta_views(tta)
    store = Path(store) if store else run.store()
    if store is None:
        raise KitError(f"expected env.json with the store in {run.path}, found none. Fix: pass --store.")
    folds = [f for f in range(cfg.folds.k) if run.fold(f).is_done()]
    if not folds:
        raise KitError(f"{run.path} has no finished fold to predict with. Fix: run `kit train` until a fold finishes.")
    metrics = run.read_metrics()
    oof_score = metrics.oof_score if metrics else None
    metric = get_metric(metrics.metric if metrics else get_adapter(cfg.competition).metric)
    if oof and not run.oof_path.exists():
        print(f"OOF not re-scored: {run.path} has no oof.csv until every fold is trained (done: {folds})")
        oof = False
    with open_store(store, get_adapter(cfg.competition), run.image_shape()) as h5:
        test_ids = read_table(h5, "test")["id"]
        image_shape = h5["test/images"].shape[1:]
        task, classes = store_classes(h5)
    run.check_classes(task, classes, store)
    columns = pred_columns(classes, n_outputs(task, classes))
    stamps = run.fold_stamps()
    before = run.read_predict_record()
    changed = before.changed_folds(stamps) if before is not None else []  # trained again since: redo
    done_before = before is not None and not changed and before.tta == tta and before.folds == folds
    if (
        not force
        and done_before
        and run.test_pred_path.exists()
        and (not oof or (before.oof_tta == tta and run.read_oof_tta() is not None))
    ):
        return PredictResult(run.path, tta, folds, run.read_test_pred(), oof_score, before.oof_score_tta, metric.name)
    table = run.read_folds()
    oof_pred = np.full((len(table), len(columns)), np.nan)
    test_matrix = []
    for f in folds:
        model = build_task_model(cfg.model, image_shape, task, classes)
        model.load_weights(run.fold(f).best_weights)
        test = predict_rows(
            model, store, "test", np.arange(len(test_ids)), views, batch_size, desc=f"fold {f} test ({tta})"
        )
        if not np.isfinite(test).all():
            raise KitError(
                f"fold {f} predicted NaN/inf for some test images; its weights are unusable. Fix: retrain "
                "that fold (delete its folder) with a lower train.lr."
            )
        run.write_test_fold(f, test if test.shape[1] > 1 else test[:, 0])
        test_matrix.append(test)
        if oof:
            _, valid_rows = fold_rows(table, f)
            oof_pred[valid_rows] = predict_rows(
                model, store, "train", valid_rows, views, batch_size, desc=f"fold {f} OOF ({tta})"
            )
        keras.backend.clear_session()
    run.write_test_pred(test_ids, average_folds(np.stack(test_matrix), cfg.predict.fold_average), columns)
    # OOF predictions made earlier stay described until they are remade, unless a fold changed since (stale)
    current = before is not None and not changed
    oof_tta, oof_score_tta = (before.oof_tta, before.oof_score_tta) if current else (None, None)
    if changed and not oof:
        run.oof_tta_path.unlink(missing_ok=True)
    if oof:
        plain = run.read_oof().set_index("id").loc[table["id"]].reset_index()
        run.write_oof_tta(plain, oof_pred, columns)
        oof_tta, oof_score_tta = tta, metric(target_values(plain), oof_pred, task)
    run.write_predict_record(
        PredictRecord(
            tta=tta,
            folds=folds,
            fold_average=cfg.predict.fold_average,
            oof_tta=oof_tta,
            oof_score_tta=oof_score_tta,
            fold_stamps=stamps,
        )
    )
    score_tta = oof_score_tta if oof else None
    return PredictResult(run.path, tta, folds, run.read_test_pred(), oof_score, score_tta, metric.name)
