"""Cross-validated training: K folds from the HDF5 store into one run folder (layout in ``kit.run``).

Each fold trains on the other folds' rows with augmentation, is scored on its validation rows every few epochs by
the competition's metric (the adapter's, from ``kit.metrics``, whose direction decides "best"), keeps its best
weights, and saves a resume point after every epoch. A ``max_minutes`` budget is shared by the folds still to
train: each gets an equal share of what is left, and the LR schedule is stretched to end exactly when that share
is spent. Rerunning skips finished folds and resumes an interrupted one.

Example:
    >>> from kit.train.loop import train
    >>> result = train("pcam", store="data/pcam/pcam.h5", overrides=["train.epochs=2"], max_minutes=5)  # doctest: +SKIP
    >>> result.metric, result.oof_score, result.complete, result.run_dir.name  # doctest: +SKIP
    ('roc_auc', 0.93, True, '20261124-101500_compact_cnn')
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from sklearn.utils.class_weight import compute_class_weight

from kit import paths
from kit.adapters.registry import get_adapter
from kit.config import Config, resolve_config
from kit.errors import KitError
from kit.ingest.store import open_store, read_labels, read_table, store_classes
from kit.metrics import Metric, get_metric, n_outputs
from kit.models import is_pretrainable, set_backbone_trainable
from kit.models.build import build_task_model
from kit.run import FoldDone, FoldFolder, RunFolder, RunMetrics, pred_columns
from kit.train.augment import build_augmentation, save_augmentation
from kit.train.batch_augment import BatchAugmenter
from kit.train.callbacks import (
    CosineTimeSchedule,
    EpochLog,
    GlobalDeadline,
    PlateauSchedule,
    ResumeCheckpoint,
    ValidationScore,
)
from kit.train.device import batch_multiple, detect_device, distribution_scope, set_precision
from kit.train.device.multi_worker import (
    check_multi_worker,
    check_workers_agree,
    fit_inputs,
    open_worker_run,
    worker_callbacks,
)
from kit.train.environment import environment
from kit.train.folds import check_folds, fold_rows, make_folds, parse_folds
from kit.train.loader import StoreDataset, fits_in_memory
from kit.train.model_augment import model_augmentation
from kit.train.plots import plot_run

__all__ = ["train", "TrainResult", "class_weights", "format_table", "loss_for"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainResult(RunMetrics):
    """What a training call leaves: the run's metrics.json (metric, per-fold and OOF scores, missing folds,
    ``complete``) and the run folder it is in."""

    run_dir: Path


def train(
    competition: str,
    store=None,
    config_file=None,
    overrides=(),
    folds=None,
    max_minutes=None,
    run_dir=None,
    workers: int = 0,
    verbose: int = 1,
) -> TrainResult:
    """Train the configured folds (all by default) and summarise the run; see the module docstring."""
    started = time.monotonic()
    deadline = started + 60 * max_minutes if max_minutes else None
    cfg = resolve_config(competition, config_file, list(overrides))
    store = Path(store or paths.default_store(competition))
    adapter = get_adapter(cfg.competition)
    with open_store(store, adapter) as h5:
        table = read_table(h5, "train")
        labels = read_labels(h5)
        task, classes = store_classes(h5)
        groups = h5["train/groups"].asstr()[:] if "train/groups" in h5 else None
        image_shape = h5["train/images"].shape[1:]
    labels_for = _LabelInfo(task, classes, get_metric(adapter.metric), [get_metric(m) for m in adapter.extra_metrics])
    k = cfg.folds.k
    wanted = parse_folds(folds, k)
    device = detect_device()  # before any TensorFlow op: a multi-worker strategy must come first
    check_multi_worker(device, max_minutes)
    multiple = batch_multiple(device, cfg.data.batch_size)
    compose = build_augmentation(cfg.augment.train)  # bad transform names fail before the run folder exists
    if cfg.augment.on == "model":
        model_augmentation(compose)  # so do transforms that have no model layer
    run = open_worker_run(cfg, run_dir, device)
    folds_table = _folds(run, table, labels, groups, cfg)

    precision = set_precision(cfg.train.precision, device)
    if compose is not None:
        save_augmentation(compose, run.augment_path)
    run.write_env(environment(device, precision, store, max_minutes, image_shape))
    in_memory = cfg.data.in_memory
    if in_memory == "auto":
        in_memory = fits_in_memory(len(table), image_shape)
    job = _Job(
        cfg,
        store,
        run,
        folds_table,
        labels,
        labels_for,
        image_shape,
        compose,
        in_memory,
        distribution_scope(device),
        multiple,
        workers,
        verbose,
        deadline,
    )

    todo = [f for f in wanted if not run.fold(f).is_done()]
    check_workers_agree(cfg, run, todo)
    for position, fold in enumerate(todo):
        if deadline is not None and time.monotonic() >= deadline:
            print(f"time budget spent: fold {fold} and later not started")
            break
        share = None if deadline is None else (deadline - time.monotonic()) / (len(todo) - position)
        _train_fold(job, fold, share)
    metrics, oof, table_text = _summarise(run, folds_table, job.labels, k, labels_for)
    # A finished run that trained no fold in this call has nothing new to write (nor replots).
    if todo or oof is None or not run.oof_path.exists():
        if oof is not None:
            run.write_oof(folds_table, job.labels, oof, labels_for.columns)
        else:  # a fold is missing (e.g. deleted to be retrained): an oof.csv left from before is stale
            run.oof_path.unlink(missing_ok=True)
        run.write_metrics(metrics)
        plot_run(run, k, labels_for.metric.name, labels_for.classes)
    if verbose:
        print(table_text)
        print(f"run folder: {run.path}  ({(time.monotonic() - started) / 60:.1f} min)")
    return TrainResult(**dataclasses.asdict(metrics), run_dir=run.path)


def format_table(rows: list[list[str]]) -> str:
    """Rows of strings as left-aligned columns.

    Example:
        >>> print(format_table([["fold", "auc"], ["0", "0.91"]]))
        fold  auc
        0     0.91
    """
    widths = [max(len(str(r[c])) for r in rows) for c in range(len(rows[0]))]
    return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows)


@dataclasses.dataclass(frozen=True)
class _LabelInfo:
    """What the store's labels are and how they are scored."""

    task: str
    classes: tuple[str, ...]
    metric: Metric
    extra: list[Metric]

    @property
    def n_outputs(self) -> int:
        return n_outputs(self.task, self.classes)

    @property
    def columns(self) -> list[str]:
        return pred_columns(self.classes, self.n_outputs)


def _summarise(run: RunFolder, folds: pd.DataFrame, labels: np.ndarray, k: int, info: _LabelInfo):
    """The run's scores from its finished folds, the OOF predictions (once all k are done, else None: every
    train row predicted by the fold that validated it, at its best epoch) and the table training prints."""
    name = info.metric.name
    rows = [["fold", f"val {name}", "best epoch", "epochs", "minutes", "stopped"]]
    fold_score, missing = {}, []
    for f in range(k):
        if not run.fold(f).is_done():
            missing.append(f)
            rows.append([str(f), "-", "-", "-", "-", "not trained"])
            continue
        done = run.fold(f).read_done()
        fold_score[f] = done.best_score
        rows.append(
            [
                str(f),
                f"{done.best_score:.4f}",
                str(done.best_epoch),
                str(done.epochs),
                f"{done.minutes:.1f}",
                done.stopped,
            ]
        )
    oof = oof_score = None
    extra = {}
    if not missing:
        oof = np.full((len(folds), info.n_outputs), np.nan)
        for f in range(k):
            pred = run.fold(f).read_valid_pred()
            oof[folds["fold"].to_numpy() == f] = pred.reshape(len(pred), -1)
        oof_score = info.metric(labels, oof, info.task)
        extra = {m.name: m(labels, oof, info.task) for m in info.extra}
        rows.append(["OOF", f"{oof_score:.4f}", "", "", "", "all folds"])
        rows += [[f"OOF {n}", f"{v:.4f}", "", "", "", ""] for n, v in extra.items()]
    metrics = RunMetrics(
        fold_score=fold_score,
        oof_score=oof_score,
        missing_folds=missing,
        metric=name,
        task=info.task,
        classes=list(info.classes),
        extra=extra,
    )
    return metrics, oof, format_table(rows)


@dataclasses.dataclass
class _Job:
    """What every fold of one training call shares."""

    cfg: Config
    store: Path
    run: RunFolder
    folds: pd.DataFrame
    labels: np.ndarray  # class indices (N,), or multi-hot rows (N, C)
    info: _LabelInfo
    image_shape: tuple
    compose: object
    in_memory: bool
    scope: object
    batch_multiple: int  # a validation batch is padded to a multiple of this (kit.train.device.batch_multiple)
    workers: int
    verbose: int
    deadline: float | None


def _folds(run: RunFolder, table: pd.DataFrame, labels: np.ndarray, groups, cfg: Config) -> pd.DataFrame:
    if run.folds_path.exists():
        folds = run.read_folds()
    else:
        folds = make_folds(table["id"], labels, cfg.folds.k, cfg.folds.seed, groups)
        run.write_folds(folds)
    check_folds(folds, cfg.folds.k, ids=table["id"])
    if not (folds["id"].to_numpy() == table["id"].to_numpy()).all():
        raise KitError(f"{run.folds_path} is not in the store's row order. Fix: start a new run folder for this store.")
    return folds


def _train_fold(job: _Job, fold: int, share: float | None) -> None:
    cfg, t = job.cfg, job.cfg.train
    out = job.run.fold(fold)
    out.dir.mkdir(exist_ok=True)
    state = out.read_state()
    state.stopped = None  # why a previous call stopped; this call trains on
    keras.utils.set_random_seed(cfg.seed * 1000 + fold)
    train_rows, valid_rows = fold_rows(job.folds, fold)
    loader = dict(workers=job.workers, use_multiprocessing=False) if job.workers > 1 else {}
    common = dict(in_memory=job.in_memory, **loader)
    data = StoreDataset(
        job.store,
        "train",
        train_rows,
        cfg.data.batch_size,
        shuffle=True,
        class_weight=class_weights(t.class_weight, job.labels[train_rows], job.info.task),
        n_classes=job.info.n_outputs if job.info.task == "multiclass" else None,
        augment=BatchAugmenter(job.compose) if job.compose is not None and cfg.augment.on == "cpu" else None,
        seed=cfg.seed * 1000 + fold,
        epoch=state.epoch,
        window_chunks=cfg.data.window_chunks,
        **common,
    )
    valid = StoreDataset(
        job.store, "train", valid_rows, 2 * cfg.data.batch_size, labels=False, pad_to=job.batch_multiple, **common
    )
    steps = len(data)
    seconds = None if share is None else share + state.elapsed_s
    metric = job.info.metric
    schedule = CosineTimeSchedule
    if t.schedule == "plateau":
        schedule = functools.partial(PlateauSchedule, metric=metric)
    # Pretrained backbones warm up frozen (the new head must not wreck the ImageNet features), then fine-tune.
    freeze = t.freeze_epochs if is_pretrainable(cfg.model.backbone) and cfg.model.weights else 0
    finetune_lr = t.lr * t.finetune_lr_factor if freeze else t.lr
    phases = [(0, freeze, False, t.lr), (freeze, t.epochs, True, finetune_lr)]
    history = out.history_logger(state.epoch)
    fold_started = time.monotonic()
    for start, end, trainable, lr in phases:
        epoch = state.epoch
        if end <= epoch or state.stopped:
            continue
        # the last validation (a forward pass, ~1/3 of a training step per image) must fit in the share too
        reserve = len(valid_rows) / (3 * cfg.data.batch_size)
        lr_callback = schedule(
            lr, t.epochs * steps, int(t.warmup_epochs * steps), state, seconds, reserve_steps=reserve
        )
        with job.scope():
            model = _fold_model(job, out, epoch, start, trainable, lr_callback.learning_rate, cfg.seed * 1000 + fold)
        callbacks = [
            lr_callback,
            GlobalDeadline(job.deadline, state),
            *worker_callbacks(),  # several workers: the same weights before validating and saving
            ValidationScore(
                valid,
                job.labels[valid_rows],
                out,
                state,
                metric,
                every=t.val_every,
                patience=t.patience,
                last_epoch=t.epochs,
            ),
            history,
            ResumeCheckpoint(out, state),
        ]
        if job.verbose:
            # Keras's own progress (verbose=1/2) would print "Epoch 3/80" and NaN for epochs without validation,
            # and fill a log file with backspaces: EpochLog prints one line per epoch instead.
            callbacks.append(EpochLog(fold, state, t.epochs, seconds, steps, metric=metric.name))
            until = (
                f"epoch {epoch + 1} until its {seconds / 60:.1f} min share is spent (at most {end})"
                if seconds
                else f"epochs {epoch + 1}..{end}"
            )
            print(
                f"fold {fold}: {len(train_rows)} train / {len(valid_rows)} valid images, {until}"
                + ("" if trainable else ", backbone frozen")
            )
        inputs = fit_inputs(data, epoch, model)  # several workers: each reads its share of every batch
        model.fit(**inputs, epochs=end, initial_epoch=epoch, callbacks=callbacks, verbose=0)
    for dataset in (data, valid):  # Keras' TensorFlow input pipeline keeps them alive: free the images now
        dataset.close()
    if state.best_score is None:
        raise KitError(
            f"fold {fold} ended without a validation score (no epoch finished). Fix: give it more "
            "time (--max-minutes) or fewer images per epoch."
        )
    state.stopped = state.stopped or "epochs done"
    out.write_done(
        FoldDone(
            fold=fold,
            best_score=state.best_score,
            best_epoch=state.best_epoch,
            epochs=state.epoch,
            minutes=round(state.elapsed_s / 60, 2),
            stopped=state.stopped,
            finished=datetime.datetime.now().isoformat(timespec="milliseconds"),
        )
    )
    out.resume_model.unlink(missing_ok=True)  # the resume point is not needed once the fold is done
    keras.backend.clear_session()
    if job.verbose:
        print(
            f"fold {fold}: best val {metric.name} {state.best_score:.4f} at epoch {state.best_epoch} "
            f"({state.stopped}, {(time.monotonic() - fold_started) / 60:.1f} min)"
        )


def class_weights(setting, labels: np.ndarray, task: str = "binary") -> dict | None:
    """``train.class_weight`` as ``{class index: weight}`` for these training labels; None for "none".

    "balanced" weights every class by n / (classes * its count) (scikit-learn's rule), for any task with one
    label per image; a number is the positive class's weight (binary only).

    Example:
        >>> class_weights("balanced", np.array([0, 0, 0, 1]))
        {0: 0.6666666666666666, 1: 2.0}
    """
    if setting == "none":  # the config turns the legacy spelling `false` into "none" (kit.config._CLASS_WEIGHT)
        return None
    if task == "multilabel":
        raise KitError(
            f"expected train.class_weight 'none' for a multilabel task (an image has several labels, so no "
            f"one class weight applies), got {setting!r}. Fix: --set train.class_weight=none."
        )
    labels = labels.astype(np.int64)
    classes = np.unique(labels)
    if setting == "balanced":
        weights = compute_class_weight("balanced", classes=classes, y=labels)
        return {int(c): float(w) for c, w in zip(classes, weights)}
    number = isinstance(setting, (int, float)) and not isinstance(setting, bool) and setting > 0
    if number and task == "binary":
        return {0: 1.0, 1: float(setting)}
    raise KitError(
        f'expected train.class_weight "none", "balanced" or (binary tasks) a positive number, the positives\' '
        f"weight; got {setting!r} for a {task} task. Fix: e.g. --set train.class_weight=balanced."
    )


def _fold_model(
    job: _Job, out: FoldFolder, epoch: int, phase_start: int, trainable: bool, learning_rate, seed: int
) -> keras.Model:
    """The model to continue from: the resume point if there is one (its optimizer keeps its LR schedule), else a
    fresh network compiled with ``learning_rate()`` (a float or a LearningRateSchedule), with the augmentation
    layers in front when ``augment.on`` is "model"."""
    if out.resume_model.exists() and epoch > 0:
        model = keras.saving.load_model(out.resume_model)  # weights and optimizer state
        if epoch > phase_start:
            return model
    else:
        on_model = job.cfg.augment.on == "model"
        augment = model_augmentation(job.compose, seed) if on_model else ()
        model = build_task_model(job.cfg.model, job.image_shape, job.info.task, job.info.classes, augment)
    set_backbone_trainable(model, trainable)
    t = job.cfg.train
    optimizer = keras.optimizers.AdamW(
        learning_rate(), weight_decay=t.weight_decay, use_ema=t.ema > 0, ema_momentum=t.ema or 0.99
    )
    model.compile(optimizer, loss_for(job.info.task, t.label_smoothing))
    return model


def loss_for(task: str, label_smoothing: float = 0.0) -> keras.losses.Loss:
    """The training loss of a task: cross-entropy over the softmax (one-hot targets, so label smoothing applies)
    for multiclass, binary cross-entropy per output otherwise.

    Example:
        >>> type(loss_for("multiclass", 0.1)).__name__
        'CategoricalCrossentropy'
    """
    if task == "multiclass":
        return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
    return keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing)
