"""The run folder: one per experiment, everything needed to predict, ensemble and compare.

This module is the only place that knows the folder's file names and JSON keys; every other module reads and
writes a run through ``RunFolder`` (a fold's files through ``FoldFolder``, a blend's through ``BlendFolder``).
Each file has exactly one writer (the stage in brackets)::

    runs/<competition>/<YYYYmmdd-HHMMSS>_<name>/
        config.toml          fully resolved configuration; same config -> same folder          [open_run]
        augment.json         the training augmentation, albumentations' own serialisation     [train]
        folds.csv            id, fold[, group] (store order)                                  [train]
        env.json             EnvRecord: kit_version, git_commit, python, platform, versions,  [train]
                             backend, device, precision, store, image_shape, max_minutes
        fold{k}/
            best.weights.h5  weights of the best epoch (by the validation score)               [train]
            history.csv      one row per epoch: epoch, loss, lr, val_score, val_loss          [train]
                             (val_* empty on epochs that skip validation, see train.val_every)
            valid_pred.npy   the best epoch's predictions of the fold's validation rows       [train]
            last.keras       resume point: model and optimizer after the last epoch           [train]
            state.json       resume point, FoldState: epoch, step, elapsed_s, best_score,       [train]
                             best_epoch, stopped, plateau_scale, plateau_best, plateau_wait
            done.json        the fold finished: fold, best_score, best_epoch, epochs, minutes,  [train]
                             stopped, finished (time; last.keras is deleted then)
        oof.csv              id, fold, target, then the predictions: every train id once,     [train, all folds done]
                             no TTA (see "Predictions" below)
        metrics.json         metric, task, classes, fold_score {fold: score}, oof_score       [train]
                             (null until every fold is done), extra {metric: OOF score},
                             missing_folds
        learning_curves.png  loss and validation AUC per epoch, every fold                    [train]
        roc.png              ROC curve of oof.csv (binary)                                    [train]
        confusion.png        confusion matrix of oof.csv (multiclass)                         [train]
        test_fold{k}.npy     fold k's test predictions, store order                           [predict]
        test_pred.csv        id, then the predictions: the folds' average                     [predict]
        oof_tta.csv          id, fold, target, then predictions made with TTA                 [predict --oof]
        predict.json         tta, folds, fold_average (of test_pred.csv); oof_tta and         [predict]
                             oof_score_tta (of oof_tta.csv; null without --oof); fold_stamps
                             {fold: stamp of its done.json} of the folds predicted with
    runs/<competition>/ensembles/<YYYYmmdd-HHMMSS>_<method>_<n>runs/                           [ensemble]
        weights.json         method, oof_score (the blend's CV; for hill, cross-fitted over fold halves),
                             oof_score_in_sample, weights {member: weight}, members, history, halves (hill)
        members.csv          name, path, oof_score, weight
        oof.csv              id, target, pred: the blended out-of-fold predictions (folds.csv order;
                             for hill, each fold half blended with the other half's weights)
        test_pred.csv        id, then the blended test predictions (submission order)

Predictions: a binary run has one column, ``pred`` (the positive class's probability; ``.npy`` files a vector);
multiclass and multilabel runs have one probability column per class, named by the class (``.npy``: N x C).
``target`` is the class index, or for multilabel the 0/1 row as text ("0 1 1"). ``pred_columns``,
``pred_matrix`` and ``target_values`` read them back. Scores are of the competition's metric
(``kit.metrics``), named in metrics.json; files written when every score was ROC AUC (``*_auc`` keys) still read.

Predictions go stale when a fold is trained again: predict.json's ``fold_stamps`` then differ from the folds'
(``PredictRecord.changed_folds``), so ``kit predict`` redoes its work and ``kit ensemble`` refuses the run.

Runs made before this layout are still read: an ``oof.csv`` with a ``pred_plain`` column (then ``pred`` held
the TTA predictions), and metrics.json keys ``folds`` (per-fold AUC), ``test_tta``/``tta``, ``test_folds``,
``oof_tta`` and ``oof_score_tta`` (then written by prediction into metrics.json); without ``fold_stamps`` the
predictions are taken as current.

Example:
    >>> run = RunFolder("runs/pcam/20261124-101500_compact_cnn")
    >>> run.fold(2).best_weights.name, run.oof_path.name
    ('best.weights.h5', 'oof.csv')
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from kit import paths
from kit.config import Config, config_from_dict, identity
from kit.errors import KitError
from kit.files import write_json
from kit.run_fold import FoldDone, FoldFolder, FoldState, known_fields, read_json
from kit.tomlfile import dump_toml, load_toml

__all__ = [
    "RunFolder",
    "FoldFolder",
    "FoldState",
    "FoldDone",
    "BlendFolder",
    "EnvRecord",
    "RunMetrics",
    "PredictRecord",
    "open_run",
    "load_run_config",
    "pred_columns",
    "pred_matrix",
    "target_values",
    "CONFIG",
]

CONFIG = "config.toml"


_KEY_COLUMNS = ("id", "fold", "target")


def pred_columns(classes, n_outputs: int | None = None) -> list[str]:
    """Prediction column names: ``pred`` for one output (binary), else the class names.

    Example:
        >>> pred_columns(["0", "1"], 1), pred_columns(["cat", "dog", "owl"])
        (['pred'], ['cat', 'dog', 'owl'])
    """
    n_outputs = len(classes) if n_outputs is None else n_outputs
    return ["pred"] if n_outputs == 1 else [str(c) for c in classes]


def pred_matrix(frame: pd.DataFrame) -> np.ndarray:
    """The prediction columns of an OOF or test table (every column but id, fold, target) as an (N, C) matrix."""
    return frame[[c for c in frame.columns if c not in _KEY_COLUMNS]].to_numpy(np.float64)


def target_values(frame: pd.DataFrame) -> np.ndarray:
    """The ``target`` column: class indices (N,), or the multi-hot rows (N, C) of a multilabel run."""
    target = frame["target"]
    if not pd.api.types.is_numeric_dtype(target):  # text rows "0 1 1" (object, or pandas' string dtype)
        return np.array([[int(v) for v in str(row).split()] for row in target], np.int64)
    return target.to_numpy(np.int64)


def _target_text(target) -> np.ndarray | list:
    target = np.asarray(target)
    return target.astype(int) if target.ndim == 1 else [" ".join(map(str, row)) for row in target.astype(int)]


def _pred_frame(front: dict, pred, columns) -> pd.DataFrame:
    pred = np.asarray(pred, np.float64).reshape(len(next(iter(front.values()))), -1)
    if pred.shape[1] != len(columns):
        raise KitError(f"expected {len(columns)} prediction columns ({columns}), got {pred.shape[1]}.")
    return pd.DataFrame({**front, **{c: pred[:, i] for i, c in enumerate(columns)}})


def _read_table(path: Path, columns: tuple[str, ...], command: str, predictions: bool = True) -> pd.DataFrame:
    """A run table with ``columns`` and (``predictions``) at least one prediction column after them."""
    if not path.exists():
        raise KitError(f"expected {path.name} in the run folder {path.parent}, found none. Fix: run `{command}`.")
    frame = pd.read_csv(path, dtype={"id": str})
    missing = [c for c in columns if c not in frame.columns]
    if predictions and not [c for c in frame.columns if c not in _KEY_COLUMNS]:
        missing.append("pred (or one column per class)")
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
class EnvRecord:
    """env.json: what a run was trained with and on. Keys missing from an older file read as None (or empty)."""

    kit_version: str | None = None
    git_commit: str | None = None
    python: str | None = None
    platform: str | None = None
    versions: dict = dataclasses.field(default_factory=dict)  # package -> version
    backend: str | None = None
    device: dict = dataclasses.field(default_factory=dict)  # kind, count, names
    precision: str | None = None
    store: str | None = None  # the HDF5 store trained on
    image_shape: list | None = None  # its images' (H, W, C): prediction checks another store against it
    max_minutes: float | None = None


@dataclasses.dataclass(frozen=True)
class RunMetrics:
    """metrics.json: the training scores of ``metric`` per fold and out of fold (plain predictions, no TTA)."""

    fold_score: dict  # {fold: score} of the finished folds
    oof_score: float | None  # None until every fold is done
    missing_folds: list
    metric: str = "roc_auc"
    task: str = "binary"
    classes: list = dataclasses.field(default_factory=lambda: ["0", "1"])
    extra: dict = dataclasses.field(default_factory=dict)  # {metric: OOF score} of the adapter's extra metrics

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
    oof_score_tta: float | None = None
    fold_stamps: dict | None = None  # {fold: FoldFolder.stamp()} when predicting; None before stamps were kept

    def changed_folds(self, stamps: dict) -> list[int]:
        """The folds trained again, deleted or newly finished since this record, given the current
        ``RunFolder.fold_stamps()``; [] for a record made before stamps were kept (taken as current).

        Example:
            >>> PredictRecord("d4", [0, 1], fold_stamps={"0": "a", "1": "b"}).changed_folds({"0": "a", "1": "c"})
            [1]
        """
        if self.fold_stamps is None:
            return []
        folds = set(stamps) | set(self.fold_stamps)
        return sorted(int(f) for f in folds if stamps.get(f) != self.fold_stamps.get(f))


class BlendFolder:
    """The files of a blend folder, ``runs/<competition>/ensembles/<time>_<method>_<n>runs/`` (module docstring).

    Example:
        >>> BlendFolder("runs/pcam/ensembles/20261124-101500_hill_2runs").weights.name
        'weights.json'
    """

    def __init__(self, path):
        self.path = Path(path)
        self.weights = self.path / "weights.json"
        self.members = self.path / "members.csv"
        self.oof = self.path / "oof.csv"
        self.test_pred = self.path / "test_pred.csv"

    @classmethod
    def new(cls, competition_runs, method: str, n_runs: int) -> BlendFolder:
        """A new blend folder (not made yet) under ``competition_runs`` (runs/<competition>/), named by the time."""
        return cls(Path(competition_runs) / "ensembles" / f"{time.strftime('%Y%m%d-%H%M%S')}_{method}_{n_runs}runs")


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
        self.confusion_path = self.path / "confusion.png"
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

    def fold_stamps(self) -> dict[str, str]:
        """{fold: stamp} of every finished fold (``FoldFolder.stamp``), fold numbers as strings (JSON keys)."""
        done = [p.parent for p in sorted(self.path.glob("fold*/done.json")) if p.parent.name[4:].isdigit()]
        return {d.name[4:]: FoldFolder(d).stamp() for d in done}

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
        return _read_table(self.folds_path, ("id", "fold"), "kit train", predictions=False)

    def write_folds(self, folds: pd.DataFrame) -> None:
        folds.to_csv(self.folds_path, index=False)

    # env.json
    def read_env(self) -> EnvRecord | None:
        raw = read_json(self.env_path)
        return None if raw is None else EnvRecord(**known_fields(EnvRecord, raw))

    def write_env(self, env: EnvRecord) -> None:
        write_json(self.env_path, dataclasses.asdict(env))

    def store(self) -> Path | None:
        """The store the run was trained on (from env.json), or None."""
        env = self.read_env()
        return Path(env.store) if env is not None and env.store else None

    def check_classes(self, task: str, classes, source) -> None:
        """Raise KitError unless the run was trained on ``task`` and ``classes`` in this order (metrics.json), as
        ``source`` (a store) has them: a model's outputs mean its training classes, whatever a store says now."""
        metrics = self.read_metrics()
        if metrics is not None and (metrics.task, list(metrics.classes)) != (task, [str(c) for c in classes]):
            raise KitError(
                f"expected {source} to hold the run's {metrics.task} classes {metrics.classes[:12]} in this order, "
                f"got {task} {list(classes)[:12]}. Fix: predict with the store the run was trained on "
                f"({self.store()}), or train a new run on this one."
            )

    def image_shape(self) -> tuple | None:
        """The image shape the run was trained on (from env.json; None for runs made before it was kept)."""
        env = self.read_env()
        return tuple(env.image_shape) if env is not None and env.image_shape else None

    # oof.csv (training, plain) and oof_tta.csv (prediction, with TTA)
    def write_oof(self, folds: pd.DataFrame, target: np.ndarray, pred: np.ndarray, columns=("pred",)) -> None:
        front = {"id": folds["id"].to_numpy(), "fold": folds["fold"].to_numpy(), "target": _target_text(target)}
        _pred_frame(front, pred, list(columns)).to_csv(self.oof_path, index=False)

    def read_oof(self) -> pd.DataFrame:
        """id, fold, target, predictions: the plain (no TTA) out-of-fold predictions, every train id once."""
        oof = _read_table(self.oof_path, _KEY_COLUMNS, "kit train (every fold finished)")
        if "pred_plain" in oof:  # made before oof_tta.csv: `pred` held the TTA predictions
            oof["pred"] = oof.pop("pred_plain")
        return oof

    def write_oof_tta(self, oof: pd.DataFrame, pred: np.ndarray, columns=("pred",)) -> None:
        front = {c: oof[c].to_numpy() for c in _KEY_COLUMNS}
        _pred_frame(front, pred, list(columns)).to_csv(self.oof_tta_path, index=False)

    def read_oof_tta(self) -> pd.DataFrame | None:
        """id, fold, target, pred: out-of-fold predictions made with TTA (``kit predict --oof``), or None."""
        if self.oof_tta_path.exists():
            return _read_table(self.oof_tta_path, _KEY_COLUMNS, f"kit predict --oof {self.path}")
        if self.oof_path.exists():
            legacy = _read_table(self.oof_path, _KEY_COLUMNS, "kit train")
            if "pred_plain" in legacy:
                return legacy.drop(columns="pred_plain")
        return None

    def oof_tta_source(self) -> Path:
        """The file ``read_oof_tta`` reads: oof_tta.csv, or oof.csv in a run made before it."""
        return self.oof_tta_path if self.oof_tta_path.exists() else self.oof_path

    # metrics.json
    def write_metrics(self, metrics: RunMetrics) -> None:
        write_json(
            self.metrics_path,
            {
                "metric": metrics.metric,
                "task": metrics.task,
                "classes": list(metrics.classes),
                "fold_score": {str(f): a for f, a in metrics.fold_score.items()},
                "oof_score": metrics.oof_score,
                "extra": metrics.extra,
                "missing_folds": list(metrics.missing_folds),
            },
        )

    def read_metrics(self) -> RunMetrics | None:
        raw = read_json(self.metrics_path)
        if raw is None:
            return None
        per_fold = raw.get("fold_score", raw.get("fold_auc", raw.get("folds")))  # older names
        per_fold = per_fold if isinstance(per_fold, dict) else {}
        return RunMetrics(
            fold_score={int(f): a for f, a in per_fold.items()},
            oof_score=raw.get("oof_score", raw.get("oof_auc")),
            missing_folds=list(raw.get("missing_folds", [])),
            metric=raw.get("metric", "roc_auc"),
            task=raw.get("task", "binary"),
            classes=list(raw.get("classes", ["0", "1"])),
            extra=raw.get("extra", {}),
        )

    # test_fold{k}.npy, test_pred.csv, predict.json
    def write_test_fold(self, k: int, pred: np.ndarray) -> None:
        np.save(self.test_fold_path(k), pred)

    def write_test_pred(self, ids, pred: np.ndarray, columns=("pred",)) -> None:
        _pred_frame({"id": np.asarray(ids)}, pred, list(columns)).to_csv(self.test_pred_path, index=False)

    def read_test_pred(self) -> pd.DataFrame:
        """id, predictions: the test predictions (fold average), submission order."""
        return _read_table(self.test_pred_path, ("id",), f"kit predict {self.path}")

    def write_predict_record(self, record: PredictRecord) -> None:
        write_json(self.predict_path, dataclasses.asdict(record))

    def read_predict_record(self) -> PredictRecord | None:
        """How the test predictions were made; None when ``kit predict`` has not run."""
        raw = read_json(self.predict_path)
        if raw is not None:
            return PredictRecord(**known_fields(PredictRecord, raw))
        legacy = read_json(self.metrics_path) or {}  # before predict.json prediction wrote into metrics.json
        tta = legacy.get("test_tta", legacy.get("tta"))
        if tta is None:
            return None
        oof_tta = legacy.get("oof_tta")  # "none" when training had written the OOF rows last
        return PredictRecord(
            tta=tta,
            folds=list(legacy.get("test_folds", [])),
            oof_tta=None if oof_tta in (None, "none") else oof_tta,
            oof_score_tta=legacy.get("oof_auc_tta"),
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
