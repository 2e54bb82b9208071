"""One run as the report reads it: configuration, metrics, the OOF predictions it analyses and the test predictions.

The OOF predictions are the TTA ones (``oof_tta.csv``, ``kit predict --oof``) when they exist, since the test
predictions were made the same way and an operating point chosen on them carries over; else training's plain
``oof.csv``. ``oof_source`` says which.

Example:
    >>> view = load_view("runs/pcam/20261124-101500_compact_cnn")  # doctest: +SKIP
    >>> view.task, view.pred.shape  # doctest: +SKIP
    ('binary', (220025, 1))
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from kit.errors import KitError
from kit.run import PredictRecord, RunFolder, RunMetrics, pred_matrix, target_values

__all__ = ["RunView", "load_view", "positive_proba"]


@dataclasses.dataclass
class RunView:
    run: RunFolder
    competition: str
    k: int  # folds configured
    metrics: RunMetrics
    task: str
    classes: list[str]
    oof: pd.DataFrame  # id, fold, target, predictions
    oof_source: str  # the file name read
    pred: np.ndarray  # (N, C) OOF probabilities
    target: np.ndarray  # (N,) class indices or (N, C) multi-hot
    test: pd.DataFrame | None  # test_pred.csv, or None before `kit predict`
    record: PredictRecord | None
    store: Path | None

    @property
    def name(self) -> str:
        return self.run.name


def positive_proba(pred: np.ndarray) -> np.ndarray:
    """The positive class's probability of a binary prediction matrix (its last column)."""
    return np.asarray(pred, np.float64).reshape(len(pred), -1)[:, -1]


def load_view(run_dir) -> RunView:
    """Read what the report needs from a finished run (every fold trained: ``oof.csv`` exists)."""
    run = RunFolder(run_dir)
    if not run.path.is_dir():
        raise KitError(f"expected a run folder at {run.path}, found none. Fix: pass a folder made by `kit train`.")
    cfg = run.read_config()
    metrics = run.read_metrics()
    if metrics is None or not run.oof_path.exists():
        raise KitError(
            f"expected a finished run (metrics.json and oof.csv) at {run.path}, got "
            f"{'no metrics.json' if metrics is None else 'no oof.csv (some fold is not trained)'}. "
            f"Fix: finish training (`kit train {cfg.competition} --run-dir {run.path}`)."
        )
    oof, source = (run.read_oof_tta(), run.oof_tta_path.name) if run.oof_tta_path.exists() else (None, None)
    if oof is None:
        oof, source = run.read_oof(), run.oof_path.name
    test = run.read_test_pred() if run.test_pred_path.exists() else None
    return RunView(
        run=run,
        competition=cfg.competition,
        k=cfg.folds.k,
        metrics=metrics,
        task=metrics.task,
        classes=[str(c) for c in metrics.classes],
        oof=oof,
        oof_source=source,
        pred=pred_matrix(oof),
        target=target_values(oof),
        test=test,
        record=run.read_predict_record(),
        store=run.store(),
    )
