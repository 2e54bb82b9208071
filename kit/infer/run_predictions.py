"""One run's predictions as a blend reads them: ``load_run`` -> ``RunPredictions`` (folds, OOF and test matrices,
labels, metric).

A run is blendable once ``kit train`` wrote ``folds.csv`` and ``oof.csv`` and ``kit predict RUN`` wrote
``test_pred.csv`` with the folds as they are now. A run whose budget ran out before every fold trained (no
``oof.csv``) is refused unless ``partial=True``: then the OOF rows are the finished folds' validation rows
(``fold{k}/valid_pred.npy``, labels from the run's store) and the test predictions the finished folds' average.

Example:
    >>> from kit.infer.run_predictions import load_run
    >>> run = load_run("runs/pcam/20261124-101500_compact_cnn")  # doctest: +SKIP
    >>> run.oof.shape, run.metric.name, run.missing_folds  # doctest: +SKIP
    ((220025, 1), 'roc_auc', [])
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from kit.adapters.registry import get_adapter
from kit.errors import KitError
from kit.ingest.store import open_store, read_labels, read_table
from kit.metrics import Metric, get_metric
from kit.run import RunFolder, pred_matrix, target_values

__all__ = ["RunPredictions", "load_run"]


@dataclasses.dataclass
class RunPredictions:
    """One run's predictions, as ``load_run`` reads them (every Series is indexed by id)."""

    name: str
    path: Path
    folds: pd.DataFrame  # id, fold: all of folds.csv, in its order
    oof: np.ndarray  # OOF predictions (rows, outputs) of the rows ``oof_ids``, folds.csv order
    target: np.ndarray  # labels of the rows ``oof_ids``: class indices (rows,) or multi-hot (rows, classes)
    test_ids: pd.Index  # test_pred.csv (submission) order
    test: np.ndarray  # test predictions (rows, outputs), test_ids order
    columns: list[str]  # the prediction columns' names: ["pred"], or the class names
    metric: Metric
    competition: str | None = None
    tta: str | None = None  # TTA of the test predictions (predict.json); the submission's sidecar lists it
    missing_folds: list[int] = dataclasses.field(default_factory=list)  # not trained (``load_run(partial=True)``)

    @property
    def oof_ids(self) -> pd.Series:
        """The ids of the OOF rows: every train id, or (partial run) those of the finished folds; folds.csv order."""
        rows = ~self.folds["fold"].isin(self.missing_folds)
        return self.folds.loc[rows, "id"].reset_index(drop=True)

    @property
    def oof_score(self) -> float:
        """The metric on the OOF rows (a partial run's: its finished folds' rows only)."""
        return self.metric(self.target, self.oof)


def _missing_folds(run: RunFolder, folds: pd.DataFrame) -> list[int]:
    """The folds of folds.csv not trained yet (no ``fold{k}/done.json``); for a run folder without fold folders
    (copied without its models), metrics.json's ``missing_folds``."""
    every = sorted(int(f) for f in folds["fold"].unique())
    if any(run.fold(f).dir.is_dir() for f in every):
        return [f for f in every if not run.fold(f).is_done()]
    metrics = run.read_metrics()
    return sorted(int(f) for f in metrics.missing_folds) if metrics else []


def _refuse_incomplete(run: RunFolder, missing: list[int]) -> None:
    state = f"fold(s) {missing} not trained yet" if missing else f"no {run.oof_path.name} (written once every fold is)"
    raise KitError(
        f"expected a run with every fold trained ({run.oof_path.name} covers every train row only then), got "
        f"{state} in {run.path}. Fix: finish the folds with `kit train` (the same command resumes), or blend the "
        f"finished folds now with `kit ensemble {run.path} --partial` (its CV covers only their rows)."
    )


def _store_labels(run: RunFolder, ids: pd.Series) -> np.ndarray:
    """The train labels of ``ids`` from the run's store (a partial run has no oof.csv holding them)."""
    store = run.store()
    if store is None:
        raise KitError(
            f"expected env.json with the store in {run.path} (a partial run's labels are read from it), found "
            "none. Fix: rerun `kit train` for that run (finished folds are skipped)."
        )
    adapter = get_adapter(run.read_config().competition)
    with open_store(store, adapter, run.image_shape()) as h5:
        labels, store_ids = read_labels(h5), pd.Index(read_table(h5, "train")["id"])
    index = store_ids.get_indexer(ids)
    if (index < 0).any():
        raise KitError(
            f"expected the store {store} to hold every train id of {run.folds_path}, got {int((index < 0).sum())} "
            f"missing. Fix: blend the run on the store it was trained on (env.json)."
        )
    return np.asarray(labels[index], np.int64)


def _partial_oof(run: RunFolder, folds: pd.DataFrame, missing: list[int], columns: list[str]):
    """(OOF predictions, labels) of the finished folds' validation rows, folds.csv order, from their
    ``valid_pred.npy`` (plain predictions of the best epoch, as oof.csv would hold them)."""
    finished = [f for f in sorted(int(f) for f in folds["fold"].unique()) if f not in missing]
    if not finished:
        raise KitError(
            f"expected at least one finished fold in {run.path}, got none (folds {missing} not trained). "
            "Fix: run `kit train` until a fold finishes."
        )
    covered = folds[folds["fold"].isin(finished)].reset_index(drop=True)
    oof = np.full((len(covered), len(columns)), np.nan)
    for f in finished:
        rows = covered["fold"].to_numpy() == f
        pred = np.asarray(run.fold(f).read_valid_pred(), np.float64)
        pred = pred.reshape(len(pred), -1)
        if pred.shape != (int(rows.sum()), len(columns)):
            raise KitError(
                f"expected {run.fold(f).valid_pred} to hold {int(rows.sum())} x {len(columns)} predictions (fold "
                f"{f} of folds.csv), got {pred.shape}. Fix: retrain fold {f} (delete its folder, rerun `kit train`)."
            )
        oof[rows] = pred
    return oof, _store_labels(run, covered["id"])


def load_run(run_dir, partial: bool = False) -> RunPredictions:
    """Read a finished run's folds, OOF and test predictions (``kit train`` then ``kit predict RUN``).

    The OOF predictions are the TTA ones when ``kit predict --oof`` made them (then they were made the same way
    as the test predictions), else the plain ones training wrote. Refuses a run with a fold trained again since
    ``kit predict`` ran (its test predictions, and TTA OOF rows, come from the old models), and a run with a fold
    not trained yet unless ``partial``: then the OOF rows are the finished folds' validation rows only (plain
    predictions; ``missing_folds`` lists the others) and the test predictions those ``kit predict`` averaged.
    """
    run = RunFolder(run_dir)
    if not run.path.is_dir():
        raise KitError(f"expected a run folder at {run.path}, found none. Fix: pass a folder made by `kit train`.")
    folds = run.read_folds()[["id", "fold"]]
    missing = _missing_folds(run, folds)
    if not partial and (missing or not run.oof_path.exists()):
        _refuse_incomplete(run, missing)
    record = run.read_predict_record()
    changed = record.changed_folds(run.fold_stamps()) if record is not None else []
    if changed:
        # Refused, not blended from oof.csv: test_pred.csv is stale too, so a fallback would still submit the old
        # models' test predictions; a competitor expects weights, CV and submission from the models just trained.
        stale = " and ".join(p.name for p in (run.test_pred_path, run.oof_tta_path) if p.exists())
        raise KitError(
            f"expected {stale or run.predict_path.name} of {run.path} made by its folds as they are now, got "
            f"predictions made before fold(s) {changed} were trained again (or removed). "
            f"Fix: run `kit predict {run.path} --oof`."
        )
    test = run.read_test_pred()
    columns = [c for c in test.columns if c != "id"]
    if missing:
        oof_matrix, target = _partial_oof(run, folds, missing, columns)
        oof_path = run.path / "fold*" / run.fold(0).valid_pred.name
    else:
        oof_matrix, target, oof_path = _complete_oof(run, folds, columns)
    for matrix, path in ((oof_matrix, oof_path), (pred_matrix(test), run.test_pred_path)):
        if not np.isfinite(matrix).all():
            raise KitError(
                f"{path} has NaN/inf predictions. Fix: finish the folds (`kit train`) and "
                f"rerun `kit predict {run.path}`."
            )
    competition = run.read_config().competition if run.config_path.exists() else None
    metrics = run.read_metrics()
    metric = metrics.metric if metrics else get_adapter(competition).metric
    return RunPredictions(
        name=run.name,
        path=run.path,
        folds=folds.reset_index(drop=True),
        oof=oof_matrix,
        target=target,
        test_ids=pd.Index(test["id"]),
        test=pred_matrix(test),
        columns=columns,
        metric=get_metric(metric),
        competition=competition,
        tta=record.tta if record else None,
        missing_folds=missing,
    )


def _complete_oof(run: RunFolder, folds: pd.DataFrame, columns: list[str]):
    """(OOF predictions, labels, the file read) of a run with every fold trained, folds.csv order."""
    plain = run.read_oof()
    oof, oof_path = run.read_oof_tta(), run.oof_tta_source()
    if oof is None:
        oof, oof_path = plain, run.oof_path
    if [c for c in oof.columns if c not in ("id", "fold", "target")] != columns:
        raise KitError(
            f"expected {oof_path} and {run.test_pred_path} to have the same prediction columns, got different "
            f"ones. Fix: rerun `kit predict {run.path} --oof`."
        )
    if set(oof["id"]) != set(folds["id"]):
        missing = sorted(set(folds["id"]) - set(oof["id"]))
        raise KitError(
            f"{oof_path} does not cover the ids of folds.csv ({len(missing)} missing, e.g. "
            f"{missing[:5]}). Fix: finish every fold with `kit train` (same command resumes)."
        )
    oof = oof.set_index("id").loc[folds["id"]]
    if (oof["fold"].to_numpy() != folds["fold"].to_numpy()).any():
        raise KitError(f"{oof_path} and folds.csv disagree on the fold of some ids. Fix: rerun `kit train`.")
    return pred_matrix(oof), target_values(oof), oof_path
