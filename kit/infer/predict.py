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
import json
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from tqdm.auto import tqdm

from kit.train.augment import D4_VIEWS, dihedral
from kit.train.loader import StoreDataset
from kit.infer.ensemble import average_folds
from kit.config import TTA_MODES
from kit.errors import KitError
from kit.train.folds import fold_rows, load_folds
from kit.train.summary import update_metrics
from kit.run import fold_dir, is_fold_done, load_run_config
from kit.ingest.store import open_store, read_table
from kit.train.loop import build_model

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
        raise KitError(f"expected --tta one of {', '.join(TTA_MODES)}; got {tta!r}.")
    return tuple(D4_VIEWS) if tta == "d4" else (0,)


def predict_tta(model: keras.Model, images: np.ndarray, views=(0,)) -> np.ndarray:
    """Mean probability over ``views`` (dihedral group elements) of one batch, in one forward pass."""
    stacked = np.concatenate([dihedral(images, v) for v in views]) if len(views) > 1 else images
    out = np.asarray(model.predict_on_batch(stacked), np.float64).reshape(len(views), len(images))
    return out.mean(axis=0)


def predict_rows(model, store, split: str, rows, views, batch_size: int, desc: str = "") -> np.ndarray:
    data = StoreDataset(store, split, rows, batch_size, labels=False)
    batches = tqdm(range(len(data)), desc=desc, leave=False, disable=not desc)
    return np.concatenate([predict_tta(model, data[b], views) for b in batches])


def predict_run(run_dir, tta: str | None = None, oof: bool = False, store=None, batch_size: int = 64,
                force: bool = False) -> PredictResult:
    """Predict the test split with every finished fold (and the OOF rows when ``oof``); write the results.

    Writes ``test_fold{k}.npy``, ``test_pred.csv`` (id, pred: fold average) and, with ``oof``, the TTA
    predictions into ``oof.csv`` (``pred``; the plain ones stay in ``pred_plain``) and ``oof_auc_tta`` into
    metrics.json. Skips the work when the same TTA was already applied unless ``force``.
    """
    run = Path(run_dir)
    cfg = load_run_config(run)
    tta = tta or cfg.predict.tta
    views = tta_views(tta)
    env = json.loads((run / "env.json").read_text()) if (run / "env.json").exists() else {}
    store = Path(store or env.get("store", ""))
    folds = [f for f in range(cfg.folds.k) if is_fold_done(run, f)]
    if not folds:
        raise KitError(f"{run} has no finished fold to predict with. Fix: run `kit train` until a fold finishes.")
    metrics = json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").exists() else {}
    if oof and not (run / "oof.csv").exists():
        print(f"OOF not re-scored: {run} has no oof.csv until every fold is trained (done: {folds})")
        oof = False
    with open_store(store) as h5:
        test_ids = read_table(h5, "test")["id"]
        image_shape = h5["test/images"].shape[1:]
    done_before = metrics.get("test_tta") == tta and metrics.get("test_folds") == folds
    if not force and done_before and (run / "test_pred.csv").exists() and (not oof or metrics.get("oof_tta") == tta):
        return PredictResult(run, tta, folds, pd.read_csv(run / "test_pred.csv", dtype={"id": str}),
                             metrics.get("oof_auc"), metrics.get("oof_auc_tta"))
    table = load_folds(run / "folds.csv")
    oof_pred = np.full(len(table), np.nan)
    test_matrix = []
    for f in folds:
        model = build_model(cfg, image_shape)
        model.load_weights(fold_dir(run, f) / "best.weights.h5")
        test = predict_rows(model, store, "test", np.arange(len(test_ids)), views, batch_size,
                            desc=f"fold {f} test ({tta})")
        if not np.isfinite(test).all():
            raise KitError(f"fold {f} predicted NaN/inf for some test images; its weights are unusable. Fix: retrain "
                           "that fold (delete its folder) with a lower train.lr.")
        np.save(run / f"test_fold{f}.npy", test)
        test_matrix.append(test)
        if oof:
            _, valid_rows = fold_rows(table, f)
            oof_pred[valid_rows] = predict_rows(model, store, "train", valid_rows, views, batch_size,
                                                desc=f"fold {f} OOF ({tta})")
        keras.backend.clear_session()
    test_pred = pd.DataFrame({"id": test_ids, "pred": average_folds(np.stack(test_matrix),
                                                                     cfg.predict.fold_average)})
    test_pred.to_csv(run / "test_pred.csv", index=False)
    values = dict(test_tta=tta, test_folds=folds)
    oof_auc_tta = None
    if oof:
        table = pd.read_csv(run / "oof.csv", dtype={"id": str})
        table["pred_plain"] = table.get("pred_plain", table["pred"])
        table["pred"] = oof_pred
        table.to_csv(run / "oof.csv", index=False)
        oof_auc_tta = float(roc_auc_score(table["target"], oof_pred))
        values.update(oof_tta=tta, oof_auc_tta=oof_auc_tta)
    update_metrics(run, **values)
    return PredictResult(run, tta, folds, test_pred, metrics.get("oof_auc"), oof_auc_tta)
