"""Test-time augmentation and prediction with every fold model of a run.

D4 TTA averages the model over the 8 dihedral views of each image. The views of a batch go through the model
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
from sklearn.metrics import roc_auc_score
from tqdm.auto import tqdm

from kit.config import TTA_MODES
from kit.errors import KitError
from kit.infer.ensemble import average_folds
from kit.ingest.store import open_store, read_table
from kit.models.build import build_model
from kit.run import PredictRecord, RunFolder
from kit.train.augment import D4_VIEWS, dihedral
from kit.train.folds import fold_rows
from kit.train.loader import StoreDataset

__all__ = ["predict_run", "predict_tta", "PredictResult", "TTA_MODES"]


@dataclasses.dataclass
class PredictResult:
    run_dir: Path
    tta: str
    folds: list
    test_pred: pd.DataFrame  # id, pred (fold average)
    oof_auc: float | None = None
    oof_auc_tta: float | None = None


def tta_views(tta: str) -> tuple[int, ...]:
    if tta not in TTA_MODES:
        raise KitError(f"expected --tta one of {', '.join(TTA_MODES)}; got {tta!r}. Fix: e.g. --tta {TTA_MODES[0]}.")
    return tuple(D4_VIEWS) if tta == "d4" else (0,)


def predict_tta(model: keras.Model, images: np.ndarray, views=(0,)) -> np.ndarray:
    """Mean probability over ``views`` (dihedral group elements) of one batch, in one forward pass."""
    stacked = np.concatenate([dihedral(images, v) for v in views]) if len(views) > 1 else images
    out = np.asarray(model.predict_on_batch(stacked), np.float64).reshape(len(views), len(images))
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
    tta = tta or cfg.predict.tta
    views = tta_views(tta)
    store = Path(store) if store else run.store()
    if store is None:
        raise KitError(f"expected env.json with the store in {run.path}, found none. Fix: pass --store.")
    folds = [f for f in range(cfg.folds.k) if run.fold(f).is_done()]
    if not folds:
        raise KitError(f"{run.path} has no finished fold to predict with. Fix: run `kit train` until a fold finishes.")
    metrics = run.read_metrics()
    oof_auc = metrics.oof_auc if metrics else None
    if oof and not run.oof_path.exists():
        print(f"OOF not re-scored: {run.path} has no oof.csv until every fold is trained (done: {folds})")
        oof = False
    with open_store(store) as h5:
        test_ids = read_table(h5, "test")["id"]
        image_shape = h5["test/images"].shape[1:]
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
        return PredictResult(run.path, tta, folds, run.read_test_pred(), oof_auc, before.oof_auc_tta)
    table = run.read_folds()
    oof_pred = np.full(len(table), np.nan)
    test_matrix = []
    for f in folds:
        model = build_model(cfg.model, image_shape)
        model.load_weights(run.fold(f).best_weights)
        test = predict_rows(
            model, store, "test", np.arange(len(test_ids)), views, batch_size, desc=f"fold {f} test ({tta})"
        )
        if not np.isfinite(test).all():
            raise KitError(
                f"fold {f} predicted NaN/inf for some test images; its weights are unusable. Fix: retrain "
                "that fold (delete its folder) with a lower train.lr."
            )
        run.write_test_fold(f, test)
        test_matrix.append(test)
        if oof:
            _, valid_rows = fold_rows(table, f)
            oof_pred[valid_rows] = predict_rows(
                model, store, "train", valid_rows, views, batch_size, desc=f"fold {f} OOF ({tta})"
            )
        keras.backend.clear_session()
    run.write_test_pred(test_ids, average_folds(np.stack(test_matrix), cfg.predict.fold_average))
    # OOF predictions made earlier stay described until they are remade, unless a fold changed since (stale)
    oof_tta, oof_auc_tta = (before.oof_tta, before.oof_auc_tta) if before is not None and not changed else (None, None)
    if changed and not oof:
        run.oof_tta_path.unlink(missing_ok=True)
    if oof:
        plain = run.read_oof().set_index("id").loc[table["id"]].reset_index()
        run.write_oof_tta(plain, oof_pred)
        oof_tta, oof_auc_tta = tta, float(roc_auc_score(plain["target"], oof_pred))
    run.write_predict_record(
        PredictRecord(
            tta=tta,
            folds=folds,
            fold_average=cfg.predict.fold_average,
            oof_tta=oof_tta,
            oof_auc_tta=oof_auc_tta,
            fold_stamps=stamps,
        )
    )
    return PredictResult(run.path, tta, folds, run.read_test_pred(), oof_auc, oof_auc_tta if oof else None)
