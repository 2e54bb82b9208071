"""Cross-validated training: K folds from the HDF5 store into one run folder (layout in ``kit.run``).

Each fold trains on the other folds' rows with augmentation, is scored by validation ROC AUC every few epochs,
keeps its best weights, and saves a resume point after every epoch. A ``max_minutes`` budget is shared by the
folds still to train: each gets an equal share of what is left, and the LR schedule is stretched to end exactly
when that share is spent. Rerunning skips finished folds and resumes an interrupted one.

Example:
    >>> from kit.train.loop import train
    >>> result = train("pcam", store="data/pcam/pcam.h5", overrides=["train.epochs=2"], max_minutes=5)  # doctest: +SKIP
    >>> result.oof_auc  # doctest: +SKIP
    0.93
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from sklearn.utils.class_weight import compute_class_weight

from kit import paths
from kit.train.augment import BatchAugmenter, build_augmentation, save_augmentation
from kit.train.callbacks import (CosineTimeSchedule, GlobalDeadline, PlateauSchedule, ResumeCheckpoint, ValidationAUC,
                           write_json)
from kit.config import Config, resolve_config
from kit.train.loader import StoreDataset, fits_in_memory
from kit.train.device import detect_device, distribution_scope, set_precision
from kit.errors import KitError
from kit.train.folds import check_folds, fold_rows, load_folds, make_folds, save_folds
from kit.models import create_model, is_pretrainable, set_backbone_trainable
from kit.train.summary import environment, plot_run, summarise_run
from kit.run import fold_dir, is_fold_done, open_run
from kit.ingest.store import open_store, read_table

__all__ = ["train", "CVResult", "build_model", "class_weights"]


@dataclasses.dataclass
class CVResult:
    """What a training call leaves: the run folder, per-fold validation AUC, the OOF AUC (None until every fold
    is done) and the folds still missing."""

    run_dir: Path
    fold_auc: dict
    oof_auc: float | None
    missing_folds: list

    @property
    def complete(self) -> bool:
        return not self.missing_folds


def build_model(cfg: Config, image_shape) -> keras.Model:
    """The configured network (uncompiled); ``kit.infer.predict`` rebuilds the same one to load fold weights."""
    m = cfg.model
    return create_model(m.backbone, input_shape=tuple(image_shape), weights=m.weights or None, dropout=m.dropout,
                        crop=m.crop or None, resize=m.resize or None, pool=m.pool)


def train(competition: str, store=None, config_file=None, overrides=(), folds=None, max_minutes=None,
          run_dir=None, workers: int = 0, verbose: int = 1) -> CVResult:
    """Train the configured folds (all by default) and summarise the run; see the module docstring."""
    started = time.monotonic()
    deadline = started + 60 * max_minutes if max_minutes else None
    cfg = resolve_config(competition, config_file, list(overrides))
    store = Path(store or paths.default_store(competition))
    with open_store(store) as h5:
        table = read_table(h5, "train")
        groups = h5["train/groups"].asstr()[:] if "train/groups" in h5 else None
        image_shape = h5["train/images"].shape[1:]
    k = cfg.folds.k
    wanted = _parse_folds(folds, k)
    compose = build_augmentation(cfg.augment.train)  # bad transform names fail before the run folder exists
    run = open_run(cfg, run_dir)
    folds_table = _folds(run, table, groups, cfg)

    device = detect_device()
    precision = set_precision(cfg.train.precision, device)
    if compose is not None:
        save_augmentation(compose, run / "augment.json")
    write_json(run / "env.json", environment(device, precision, store, max_minutes))
    in_memory = cfg.data.in_memory
    if in_memory == "auto":
        in_memory = fits_in_memory(len(table), image_shape)
    job = _Job(cfg, store, run, folds_table, table["label"].to_numpy(np.float32), image_shape, compose, in_memory,
               distribution_scope(device), workers, verbose, deadline)

    todo = [f for f in wanted if not is_fold_done(run, f)]
    for position, fold in enumerate(todo):
        if deadline is not None and time.monotonic() >= deadline:
            print(f"time budget spent: fold {fold} and later not started")
            break
        share = None if deadline is None else (deadline - time.monotonic()) / (len(todo) - position)
        _train_fold(job, fold, share)
    summary = summarise_run(run, folds_table, job.labels, k, changed=bool(todo))
    if todo:
        plot_run(run)
    if verbose:
        print(summary.table)
        print(f"run folder: {run}  ({(time.monotonic() - started) / 60:.1f} min)")
    return CVResult(run, summary.fold_auc, summary.oof_auc, summary.missing)


@dataclasses.dataclass
class _Job:
    """What every fold of one training call shares."""

    cfg: Config
    store: Path
    run: Path
    folds: pd.DataFrame
    labels: np.ndarray
    image_shape: tuple
    compose: object
    in_memory: bool
    scope: object
    workers: int
    verbose: int
    deadline: float | None


def _folds(run: Path, table: pd.DataFrame, groups, cfg: Config) -> pd.DataFrame:
    path = run / "folds.csv"
    if path.exists():
        folds = load_folds(path)
    else:
        folds = make_folds(table["id"], table["label"], cfg.folds.k, cfg.folds.seed, groups)
        save_folds(folds, path)
    check_folds(folds, cfg.folds.k, ids=table["id"])
    if not (folds["id"].to_numpy() == table["id"].to_numpy()).all():
        raise KitError(f"{path} is not in the store's row order. Fix: start a new run folder for this store.")
    return folds


def _parse_folds(folds, k: int) -> list[int]:
    if folds is None or folds == "":
        return list(range(k))
    try:
        wanted = sorted({int(f) for f in str(folds).split(",")})
    except ValueError:
        raise KitError(f"expected --folds as comma-separated numbers like 0,3; got {folds!r}.") from None
    bad = [f for f in wanted if not 0 <= f < k]
    if bad:
        raise KitError(f"expected fold numbers 0..{k - 1} (folds.k={k}); got {bad}.")
    return wanted


def _train_fold(job: _Job, fold: int, share: float | None) -> None:
    cfg, t = job.cfg, job.cfg.train
    out = fold_dir(job.run, fold)
    out.mkdir(exist_ok=True)
    state = json.loads((out / "state.json").read_text()) if (out / "state.json").exists() else {}
    state.setdefault("step", 0)
    state.setdefault("elapsed_s", 0.0)
    state.pop("stopped", None)
    keras.utils.set_random_seed(cfg.seed * 1000 + fold)
    train_rows, valid_rows = fold_rows(job.folds, fold)
    loader = dict(workers=job.workers, use_multiprocessing=False) if job.workers > 1 else {}
    common = dict(in_memory=job.in_memory, **loader)
    data = StoreDataset(job.store, "train", train_rows, cfg.data.batch_size, shuffle=True,
                        class_weight=class_weights(t.class_weight, job.labels[train_rows]),
                        augment=BatchAugmenter(job.compose) if job.compose is not None else None,
                        seed=cfg.seed * 1000 + fold, epoch=state.get("epoch", 0),
                        window_chunks=cfg.data.window_chunks, **common)
    valid = StoreDataset(job.store, "train", valid_rows, 2 * cfg.data.batch_size, labels=False, **common)
    steps = len(data)
    seconds = None if share is None else share + state["elapsed_s"]
    schedule_cls = PlateauSchedule if t.schedule == "plateau" else CosineTimeSchedule
    # Pretrained backbones warm up frozen (the new head must not wreck the ImageNet features), then fine-tune.
    freeze = t.freeze_epochs if is_pretrainable(cfg.model.backbone) and cfg.model.weights else 0
    finetune_lr = t.lr * t.finetune_lr_factor if freeze else t.lr
    phases = [(0, freeze, False, t.lr), (freeze, t.epochs, True, finetune_lr)]
    _truncate_history(out / "history.csv", state.get("epoch", 0))
    history = keras.callbacks.CSVLogger(str(out / "history.csv"), append=True)
    fold_started = time.monotonic()
    for start, end, trainable, lr in phases:
        epoch = state.get("epoch", 0)
        if end <= epoch or state.get("stopped"):
            continue
        with job.scope():
            model = _fold_model(job, out, epoch, start, trainable, lr)
        callbacks = [
            schedule_cls(lr, t.epochs * steps, int(t.warmup_epochs * steps), state, seconds),
            GlobalDeadline(job.deadline, state),
            ValidationAUC(valid, job.labels[valid_rows], out, state, every=t.val_every, patience=t.patience,
                          last_epoch=t.epochs),
            history,
            ResumeCheckpoint(out, state),
        ]
        if job.verbose:
            print(f"fold {fold}: {len(train_rows)} train / {len(valid_rows)} valid images, epochs {epoch + 1}..{end}"
                  + (f", {seconds / 60:.1f} min share" if seconds else "") + ("" if trainable else ", backbone frozen"))
        model.fit(data, epochs=end, initial_epoch=epoch, callbacks=callbacks, verbose=job.verbose)
    if state.get("best_auc") is None:
        raise KitError(f"fold {fold} ended without a validation score (no epoch finished). Fix: give it more "
                       "time (--max-minutes) or fewer images per epoch.")
    state.setdefault("stopped", "epochs done")
    write_json(out / "done.json", {"fold": fold, "best_auc": state["best_auc"], "best_epoch": state["best_epoch"],
                                   "epochs": state["epoch"], "minutes": round(state["elapsed_s"] / 60, 2),
                                   "stopped": state["stopped"]})
    (out / "last.keras").unlink(missing_ok=True)  # the resume point is not needed once the fold is done
    keras.backend.clear_session()
    if job.verbose:
        print(f"fold {fold}: best val AUC {state['best_auc']:.4f} at epoch {state['best_epoch']} "
              f"({state['stopped']}, {(time.monotonic() - fold_started) / 60:.1f} min)")


def class_weights(setting, labels: np.ndarray) -> dict | None:
    """``train.class_weight`` as ``{label: weight}`` for these training labels; None for "none".

    Example:
        >>> class_weights("balanced", np.array([0, 0, 0, 1]))
        {0: 0.6666666666666666, 1: 2.0}
    """
    if setting == "none" or setting is False:
        return None
    classes = np.unique(labels.astype(np.int64))
    if setting == "balanced":
        weights = compute_class_weight("balanced", classes=classes, y=labels.astype(np.int64))
        return {int(c): float(w) for c, w in zip(classes, weights)}
    if isinstance(setting, (int, float)) and not isinstance(setting, bool) and setting > 0:
        return {0: 1.0, 1: float(setting)}
    raise KitError(f"expected train.class_weight \"none\", \"balanced\" or a positive number (the positives' "
                   f"weight); got {setting!r}.")


def _truncate_history(path: Path, epochs: int) -> None:
    """Drop history rows of an epoch that was logged but not checkpointed before a kill (it is redone)."""
    if path.exists():
        history = pd.read_csv(path)
        if len(history) > epochs:
            history[history["epoch"] < epochs].to_csv(path, index=False)


def _fold_model(job: _Job, out: Path, epoch: int, phase_start: int, trainable: bool, lr: float) -> keras.Model:
    """The model to continue from: the resume point if there is one, else a fresh network."""
    resume = out / "last.keras"
    if resume.exists() and epoch > 0:
        model = keras.saving.load_model(resume)  # weights and optimizer state
        if epoch > phase_start:
            return model
    else:
        model = build_model(job.cfg, job.image_shape)
    set_backbone_trainable(model, trainable)
    t = job.cfg.train
    optimizer = keras.optimizers.AdamW(lr, weight_decay=t.weight_decay, use_ema=t.ema > 0,
                                       ema_momentum=t.ema or 0.99)
    model.compile(optimizer, "binary_crossentropy")
    return model
