"""One fold folder of a run, ``fold{k}/``: its file names, state.json (``FoldState``) and done.json (``FoldDone``).

Part of the run-folder contract: the layout and the writer of each file are in ``kit.run``'s docstring, and
``RunFolder.fold(k)`` is how the rest of kit gets a ``FoldFolder``.

Example:
    >>> FoldFolder("runs/pcam/20261124-101500_compact_cnn/fold0").state.name
    'state.json'
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from kit.files import write_json

__all__ = ["FoldFolder", "FoldState", "FoldDone", "read_json", "known_fields", "RENAMED"]


def read_json(path: Path) -> dict | None:
    """The JSON object at ``path``, or None when there is no file."""
    return json.loads(path.read_text()) if path.exists() else None


# Keys renamed when the metric stopped being ROC AUC always: files written before are read under the new name.
RENAMED = {"best_auc": "best_score", "oof_auc": "oof_score", "oof_auc_tta": "oof_score_tta", "fold_auc": "fold_score"}


def known_fields(cls, raw: dict) -> dict:
    """The keys of ``raw`` that are fields of the dataclass ``cls`` (a file written by another kit version may
    have more; keys of ``RENAMED`` read under their new name).

    Example:
        >>> known_fields(FoldDone, {"fold": 0, "best_auc": 0.9, "later_key": 1})
        {'fold': 0, 'best_score': 0.9}
    """
    names = {f.name for f in dataclasses.fields(cls)}
    raw = {RENAMED.get(k, k) if RENAMED.get(k) not in raw else k: v for k, v in raw.items()}
    return {k: v for k, v in raw.items() if k in names}


@dataclasses.dataclass
class FoldState:
    """state.json: where an unfinished fold stands. Training's callbacks update it; ResumeCheckpoint saves it."""

    epoch: int = 0  # epochs finished
    step: int = 0  # optimizer steps taken
    elapsed_s: float = 0.0  # training time so far
    best_score: float | None = None  # of the competition's metric (best by its direction)
    best_epoch: int | None = None
    stopped: str | None = None  # why the fold stopped; None while it trains
    plateau_scale: float = 1.0  # PlateauSchedule: the factor on the learning rate so far
    plateau_best: float | None = None  # PlateauSchedule: the best validation score so far
    plateau_wait: int = 0  # PlateauSchedule: validations without improvement


@dataclasses.dataclass(frozen=True)
class FoldDone:
    """done.json: how a finished fold ended."""

    fold: int
    best_score: float
    best_epoch: int
    epochs: int
    minutes: float
    stopped: str
    finished: str | None = None  # when (ISO time; None in runs made before it was recorded)


class FoldFolder:
    """The files of one fold folder, ``fold{k}/`` (see ``kit.run``'s docstring). The constructor does no I/O."""

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

    def read_state(self) -> FoldState:
        return FoldState(**known_fields(FoldState, read_json(self.state) or {}))

    def write_state(self, state: FoldState) -> None:
        write_json(self.state, dataclasses.asdict(state))

    def read_done(self) -> FoldDone:
        return FoldDone(**known_fields(FoldDone, json.loads(self.done.read_text())))

    def write_done(self, done: FoldDone) -> None:
        write_json(self.done, dataclasses.asdict(done))

    def stamp(self) -> str:
        """A fingerprint of done.json: it changes whenever the fold is trained again (see ``PredictRecord``)."""
        return hashlib.sha256(self.done.read_bytes()).hexdigest()[:16]

    def read_valid_pred(self) -> np.ndarray:
        return np.load(self.valid_pred)

    def write_valid_pred(self, pred: np.ndarray) -> None:
        np.save(self.valid_pred, pred)

    def history_logger(self, epochs: int):
        """The Keras callback that appends one row per epoch to history.csv, after dropping the rows of epochs
        past ``epochs`` (logged but not checkpointed before a kill, so they are trained again)."""
        import keras  # only training calls this: reading a run folder must not import Keras

        if self.history.exists():
            history = pd.read_csv(self.history)
            if len(history) > epochs:
                history[history["epoch"] < epochs].to_csv(self.history, index=False)
        return keras.callbacks.CSVLogger(str(self.history), append=True)
