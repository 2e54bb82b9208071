"""The run folder: one per experiment, everything needed to predict, ensemble and compare.

This module is the only place that knows the folder's file names and JSON keys; every other module reads and
writes a run through ``RunFolder``. Each file has exactly one writer (the stage in brackets)::

    runs/<competition>/<YYYYmmdd-HHMMSS>_<name>/
        config.toml          fully resolved configuration; same config -> same folder          [open_run]
        augment.json         the training augmentation, albumentations' own serialisation     [train]
        folds.csv            id, fold[, group] (store order)                                  [train]
        env.json             kit_version, git_commit, python, platform, versions, backend,    [train]
                             device, precision, store, max_minutes
        fold{k}/
            best.weights.h5  weights of the best epoch (by validation AUC)                     [train]
            history.csv      one row per epoch: epoch, loss, lr, val_auc, val_loss            [train]
                             (val_* empty on epochs that skip validation, see train.val_every)
            valid_pred.npy   the best epoch's predictions of the fold's validation rows       [train]
            last.keras       resume point: model and optimizer after the last epoch           [train]
            state.json       resume point: epoch, step, elapsed_s, best_auc, best_epoch, ...  [train]
            done.json        the fold finished: fold, best_auc, best_epoch, epochs, minutes,  [train]
                             stopped (last.keras is deleted then)
        oof.csv              id, fold, target, pred: every train id once, no TTA              [train, all folds done]
        metrics.json         metric, fold_auc {fold: AUC}, oof_auc (null until every fold is  [train]
                             done), missing_folds
        learning_curves.png  loss and validation AUC per epoch, every fold                    [train]
        roc.png              ROC curve of oof.csv                                             [train]
        test_fold{k}.npy     fold k's test predictions, store order                           [predict]
        test_pred.csv        id, pred: the folds' average                                     [predict]
        oof_tta.csv          id, fold, target, pred: out-of-fold predictions made with TTA    [predict --oof]
        predict.json         tta, folds, fold_average (of test_pred.csv); oof_tta and         [predict]
                             oof_auc_tta (of oof_tta.csv; null without --oof)

Runs made before this layout are still read: an ``oof.csv`` with a ``pred_plain`` column (then ``pred`` held
the TTA predictions), and metrics.json keys ``folds`` (per-fold AUC), ``test_tta``/``tta``, ``test_folds``,
``oof_tta`` and ``oof_auc_tta`` (then written by prediction into metrics.json).

Example:
    >>> run = RunFolder("runs/pcam/20261124-101500_compact_cnn")
    >>> run.fold(2).best_weights.name, run.oof_path.name
    ('best.weights.h5', 'oof.csv')
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from kit import paths
from kit.config import Config, config_from_dict, identity
from kit.errors import KitError
from kit.tomlfile import dump_toml, load_toml

__all__ = [
    "RunFolder",
    "FoldFolder",
    "FoldDone",
    "RunMetrics",
    "PredictRecord",
    "open_run",
    "load_run_config",
    "write_json",
    "CONFIG",
]

CONFIG = "config.toml"


def write_json(path, data) -> None:
    """Write JSON atomically: a reader never sees half a file, even after kill -9.

    Example:
        >>> write_json("runs/pcam/x/metrics.json", {"oof_auc": 0.95})  # doctest: +SKIP
    """
    tmp = Path(f"{path}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=float) + "\n")
    os.replace(tmp, path)


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def _read_table(path: Path, columns: tuple[str, ...], command: str) -> pd.DataFrame:
    if not path.exists():
        raise KitError(f"expected {path.name} in the run folder {path.parent}, found none. Fix: run `{command}`.")
    frame = pd.read_csv(path, dtype={"id": str})
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KitError(
            f"expected columns {list(columns)} in {path}, got {list(frame.columns)}. "
            f"Fix: rerun `{command}` to rewrite it."
        )
    if frame["id"].duplicated().any():
        dup = frame.loc[frame["id"].duplicated(), "id"].head(5).tolist()
        raise KitError(f"{path} lists some ids more than once, e.g. {dup}. Fix: rerun `{command}`.")
    return frame


@dataclasses.dataclass(frozen=True)
class FoldDone:
    """done.json: how a finished fold ended."""

    fold: int
    best_auc: float
    best_epoch: int
    epochs: int
    minutes: float
    stopped: str


@dataclasses.dataclass(frozen=True)
class RunMetrics:
    """metrics.json: the training scores (ROC AUC) per fold and out of fold (plain predictions, no TTA)."""

    fold_auc: dict  # {fold: AUC} of the finished folds
    oof_auc: float | None  # None until every fold is done
    missing_folds: list
    metric: str = "roc_auc"

    @property
    def complete(self) -> bool:
        return not self.missing_folds


@dataclasses.dataclass(frozen=True)
class PredictRecord:
    """predict.json: how test_pred.csv (and oof_tta.csv) were made."""

    tta: str  # TTA of test_pred.csv and test_fold{k}.npy
    folds: list  # folds averaged into test_pred.csv
    fold_average: str = "mean"
    oof_tta: str | None = None  # TTA of oof_tta.csv; None when the OOF rows were not re-scored
    oof_auc_tta: float | None = None


class FoldFolder:
    """The files of one fold folder, ``fold{k}/`` (see the module docstring)."""

    def __init__(self, path):
        self.dir = Path(path)
        self.best_weights = self.dir / "best.weights.h5"
        self.history = self.dir / "history.csv"
        self.valid_pred = self.dir / "valid_pred.npy"
        self.resume_model = self.dir / "last.keras"
        self.resume_model_tmp = self.dir / "last-tmp.keras"  # written first, then renamed: never half a file
        self.state = self.dir / "state.json"
        self.done = self.dir / "done.json"

    def is_done(self) -> bool:
        return self.done.exists()

    def read_state(self) -> dict:
        return _read_json(self.state) or {}

    def write_state(self, state: dict) -> None:
        write_json(self.state, state)

    def read_done(self) -> FoldDone:
        return FoldDone(**json.loads(self.done.read_text()))

    def write_done(self, done: FoldDone) -> None:
        write_json(self.done, dataclasses.asdict(done))

    def read_valid_pred(self) -> np.ndarray:
        return np.load(self.valid_pred)

    def write_valid_pred(self, pred: np.ndarray) -> None:
        np.save(self.valid_pred, pred)


class RunFolder:
    """A run folder's files, read and written with their types. The constructor only stores the path.

    Example:
        >>> RunFolder("runs/pcam/20261124-101500_compact_cnn").test_fold_path(0).name
        'test_fold0.npy'
    """

    def __init__(self, path):
        if isinstance(path, RunFolder):
            path = path.path
        if not isinstance(path, (str, os.PathLike)) or not str(path):
            raise KitError(
                f"expected a run folder path (runs/<competition>/<time>_<name>), got {path!r}. "
                "Fix: pass a folder made by `kit train`."
            )
        self.path = Path(path)
        self.config_path = self.path / CONFIG
        self.augment_path = self.path / "augment.json"
        self.folds_path = self.path / "folds.csv"
        self.env_path = self.path / "env.json"
        self.oof_path = self.path / "oof.csv"
        self.oof_tta_path = self.path / "oof_tta.csv"
        self.metrics_path = self.path / "metrics.json"
        self.learning_curves_path = self.path / "learning_curves.png"
        self.roc_path = self.path / "roc.png"
        self.test_pred_path = self.path / "test_pred.csv"
        self.predict_path = self.path / "predict.json"

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    def __eq__(self, other) -> bool:
        return isinstance(other, RunFolder) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    @property
    def name(self) -> str:
        return self.path.name

    def fold(self, k: int) -> FoldFolder:
        return FoldFolder(self.path / f"fold{k}")

    def test_fold_path(self, k: int) -> Path:
        return self.path / f"test_fold{k}.npy"

    # config.toml
    def read_config(self) -> Config:
        if not self.config_path.exists():
            raise KitError(
                f"expected a run folder with {CONFIG} at {self.path}, found none. Fix: pass a folder "
                "made by `kit train` (runs/<competition>/<time>_<name>)."
            )
        # runs made before a key existed get its default, which is what they ran with
        return config_from_dict(load_toml(self.config_path), str(self.config_path))

    def write_config(self, cfg: Config) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(dump_toml(cfg.to_dict()))

    # folds.csv
    def read_folds(self) -> pd.DataFrame:
        return _read_table(self.folds_path, ("id", "fold"), "kit train")

    def write_folds(self, folds: pd.DataFrame) -> None:
        folds.to_csv(self.folds_path, index=False)

    # env.json
    def read_env(self) -> dict:
        return _read_json(self.env_path) or {}

    def write_env(self, env: dict) -> None:
        write_json(self.env_path, env)

    def store(self) -> Path | None:
        """The store the run was trained on (from env.json)."""
        store = self.read_env().get("store")
        return Path(store) if store else None

    # oof.csv (training, plain) and oof_tta.csv (prediction, with TTA)
    def write_oof(self, folds: pd.DataFrame, target: np.ndarray, pred: np.ndarray) -> None:
        pd.DataFrame(
            {"id": folds["id"], "fold": folds["fold"], "target": np.asarray(target).astype(int), "pred": pred}
        ).to_csv(self.oof_path, index=False)

    def read_oof(self) -> pd.DataFrame:
        """id, fold, target, pred: the plain (no TTA) out-of-fold predictions, every train id once."""
        oof = _read_table(self.oof_path, ("id", "fold", "target", "pred"), "kit train (every fold finished)")
        if "pred_plain" in oof:  # made before oof_tta.csv: `pred` held the TTA predictions
            oof["pred"] = oof.pop("pred_plain")
        return oof

    def write_oof_tta(self, oof: pd.DataFrame, pred: np.ndarray) -> None:
        table = oof[["id", "fold", "target"]].copy()
        table["pred"] = pred
        table.to_csv(self.oof_tta_path, index=False)

    def read_oof_tta(self) -> pd.DataFrame | None:
        """id, fold, target, pred: out-of-fold predictions made with TTA (``kit predict --oof``), or None."""
        if self.oof_tta_path.exists():
            return _read_table(self.oof_tta_path, ("id", "fold", "target", "pred"), f"kit predict --oof {self.path}")
        if self.oof_path.exists():
            legacy = _read_table(self.oof_path, ("id", "fold", "target", "pred"), "kit train")
            if "pred_plain" in legacy:
                return legacy.drop(columns="pred_plain")
        return None

    # metrics.json
    def write_metrics(self, metrics: RunMetrics) -> None:
        write_json(
            self.metrics_path,
            {
                "metric": metrics.metric,
                "fold_auc": {str(f): a for f, a in metrics.fold_auc.items()},
                "oof_auc": metrics.oof_auc,
                "missing_folds": list(metrics.missing_folds),
            },
        )

    def read_metrics(self) -> RunMetrics | None:
        raw = _read_json(self.metrics_path)
        if raw is None:
            return None
        per_fold = raw.get("fold_auc", raw.get("folds"))  # "folds" before this layout
        per_fold = per_fold if isinstance(per_fold, dict) else {}
        return RunMetrics(
            fold_auc={int(f): a for f, a in per_fold.items()},
            oof_auc=raw.get("oof_auc"),
            missing_folds=list(raw.get("missing_folds", [])),
            metric=raw.get("metric", "roc_auc"),
        )

    # test_fold{k}.npy, test_pred.csv, predict.json
    def write_test_fold(self, k: int, pred: np.ndarray) -> None:
        np.save(self.test_fold_path(k), pred)

    def read_test_fold(self, k: int) -> np.ndarray:
        return np.load(self.test_fold_path(k))

    def write_test_pred(self, ids, pred: np.ndarray) -> None:
        pd.DataFrame({"id": ids, "pred": pred}).to_csv(self.test_pred_path, index=False)

    def read_test_pred(self) -> pd.DataFrame:
        """id, pred: the test predictions (fold average), submission order."""
        return _read_table(self.test_pred_path, ("id", "pred"), f"kit predict {self.path}")

    def write_predict_record(self, record: PredictRecord) -> None:
        write_json(self.predict_path, dataclasses.asdict(record))

    def read_predict_record(self) -> PredictRecord | None:
        """How the test predictions were made; None when ``kit predict`` has not run."""
        raw = _read_json(self.predict_path)
        if raw is not None:
            return PredictRecord(**raw)
        legacy = _read_json(self.metrics_path) or {}  # before predict.json prediction wrote into metrics.json
        tta = legacy.get("test_tta", legacy.get("tta"))
        if tta is None:
            return None
        oof_tta = legacy.get("oof_tta")  # "none" when training had written the OOF rows last
        return PredictRecord(
            tta=tta,
            folds=list(legacy.get("test_folds", [])),
            oof_tta=None if oof_tta in (None, "none") else oof_tta,
            oof_auc_tta=legacy.get("oof_auc_tta"),
        )


def load_run_config(run) -> Config:
    """The configuration of the run folder ``run`` (a path or a RunFolder)."""
    return RunFolder(run).read_config()


def open_run(cfg: Config, run_dir=None) -> Path:
    """The run folder for ``cfg``: ``run_dir`` if given, else the newest folder under runs/<competition>/ whose
    config equals ``cfg`` (so rerunning a command resumes it), else a new timestamped one. Writes config.toml."""
    if run_dir is None:
        root = paths.runs_dir() / cfg.competition
        same = [
            d
            for d in sorted(root.glob(f"*_{cfg.name}"), reverse=True)
            if (d / CONFIG).exists() and identity(load_run_config(d)) == identity(cfg)
        ]
        run_dir = same[0] if same else root / f"{time.strftime('%Y%m%d-%H%M%S')}_{cfg.name}"
    run = RunFolder(run_dir)
    if run.config_path.exists():
        if identity(run.read_config()) != identity(cfg):
            raise KitError(
                f"{run.path} holds a run with a different configuration; resuming it with this one would "
                "mix two experiments. Fix: drop --run-dir (a new folder is made) or use the same config "
                f"(see {run.config_path})."
            )
        return run.path
    run.write_config(cfg)
    return run.path
