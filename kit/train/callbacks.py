"""Keras callbacks of a training fold: validation score (the competition's metric) + best checkpoint + early
stopping, the LR schedule and the time budget, the resume checkpoint, and the one line per epoch that training prints.

Example:
    >>> from kit.train.callbacks import schedule_factor
    >>> round(schedule_factor(progress=0.5, step=100, warmup_steps=10), 3)
    0.5
"""

from __future__ import annotations

import math
import os
import sys
import time

import keras
import numpy as np

from kit.errors import KitError
from kit.metrics import Metric, as_matrix, get_metric
from kit.run import FoldFolder, FoldState

__all__ = [
    "ValidationScore",
    "CosineTimeSchedule",
    "TimeCosineSchedule",
    "PlateauSchedule",
    "ResumeCheckpoint",
    "GlobalDeadline",
    "EpochLog",
    "schedule_factor",
]


class ValidationScore(keras.callbacks.Callback):
    """Scores the validation rows with ``metric`` (a ``kit.metrics.Metric``, better by its own direction) every
    ``every`` epochs (and at the last one), keeps the best weights and their predictions, and stops after
    ``patience`` epochs without improvement (0: never).

    Adds ``val_score`` and ``val_loss`` (log loss) to the epoch logs (NaN on epochs it skips), so later callbacks
    see them. With an optimizer that keeps an EMA of the weights (``use_ema``) the EMA weights are scored and
    saved; the training weights are put back afterwards. Under mixed precision Keras wraps the optimizer in a
    ``LossScaleOptimizer`` whose own ``use_ema`` is False: the wrapped optimizer's setting counts.
    """

    def __init__(
        self, valid, target, files: FoldFolder, state: FoldState, metric: Metric, every=1, patience=0, last_epoch=None
    ):
        super().__init__()
        self.valid, self.target, self.files, self.metric = valid, np.asarray(target), files, metric
        self.state, self.every, self.patience, self.last_epoch = state, max(1, every), patience, last_epoch

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        logs["val_score"], logs["val_loss"] = float("nan"), float("nan")
        final = self.model.stop_training or epoch + 1 == self.last_epoch
        if (epoch + 1) % self.every and not final:
            return
        use_ema = getattr(inner_optimizer(getattr(self.model, "optimizer", None)), "use_ema", False)
        ema = keras.callbacks.SwapEMAWeights() if use_ema else None
        if ema is not None:
            ema.set_model(self.model)
            ema.on_test_begin()  # the model now holds the EMA weights
        try:
            self._score(epoch, logs)
        finally:
            if ema is not None:
                ema.on_test_end()

    def _score(self, epoch, logs):
        pred = as_matrix(self.model.predict(self.valid, verbose=0))[: len(self.target)]  # less a padded tail
        if not np.isfinite(pred).all():
            # a diverged model must not become "best"; stop the fold and keep the previous best
            self.model.stop_training = True
            self.state.stopped = "non-finite predictions (diverged; lower train.lr)"
            return
        try:
            score = self.metric(self.target, pred)
        except KitError:  # e.g. AUC of a validation split holding one class: no score, never the best
            score = float("nan")
        logs["val_score"], logs["val_loss"] = score, get_metric("log_loss")(self.target, pred)
        best = self.state.best_score
        if best is None or self.metric.better(score, best) or (np.isnan(best) and np.isfinite(score)):
            self.state.best_score, self.state.best_epoch = score, epoch + 1
            self.model.save_weights(self.files.best_weights)
            self.files.write_valid_pred(pred if pred.shape[1] > 1 else pred[:, 0])
        elif self.patience and epoch + 1 - self.state.best_epoch >= self.patience:
            self.model.stop_training = True
            self.state.stopped = f"early stopping (no better val {self.metric.name} for {self.patience} epochs)"


# The warm-up ends after ``warmup_steps`` or a tenth of the schedule, whichever comes first: a fold whose time share
# allows fewer steps than its warm-up would otherwise never reach its learning rate (on the full 220k PCam images one
# epoch, the default warm-up, is 2,292 steps; a 10-minute CPU run's first fold made 575 steps, all warming up).
WARMUP_SHARE = 0.1


def schedule_factor(progress: float, step: int, warmup_steps: int) -> float:
    """Linear warm-up over ``warmup_steps`` (at most ``WARMUP_SHARE`` of the progress), then cosine from 1 to 0
    as ``progress`` goes 0 -> 1."""
    warm = min(1.0, max((step + 1) / warmup_steps, progress / WARMUP_SHARE)) if warmup_steps > 0 else 1.0
    return warm * 0.5 * (1 + math.cos(math.pi * min(1.0, max(0.0, progress))))


def inner_optimizer(optimizer):
    """The optimizer that holds the settings, EMA and LR: the wrapped one of a ``LossScaleOptimizer``
    (``mixed_float16``), else ``optimizer`` itself."""
    return getattr(optimizer, "inner_optimizer", optimizer)


@keras.saving.register_keras_serializable(package="kit")
class TimeCosineSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """The LR that ``CosineTimeSchedule`` drives, evaluated by the optimizer itself from its iteration count (no
    assignment from Python per step): ``base_lr * schedule_factor(progress, step, warmup_steps)`` with
    ``step = iterations + offset`` (the fold's step: a fine-tuning phase starts a new optimizer) and ``progress``
    going linearly from ``start_progress`` at ``start_step`` to 1 at ``end_step``. ``CosineTimeSchedule`` moves
    the last three (variables, so a traced train step sees them) only rarely, as its estimate of the steps left in
    the fold's time share changes; they travel in the config, so ``last.keras`` reloads the curve where it was.

    Example:
        >>> s = TimeCosineSchedule(1.0, warmup_steps=0, end_step=100)
        >>> round(float(s(50)), 3)
        0.5
    """

    def __init__(self, base_lr, warmup_steps, end_step, offset=0, start_step=0, start_progress=0.0):
        self.base_lr, self.warmup_steps = float(base_lr), int(warmup_steps)
        values = dict(end_step=end_step, offset=offset, start_step=start_step, start_progress=start_progress)
        self._vars = {k: keras.Variable(float(v), dtype="float32", trainable=False, name=k) for k, v in values.items()}

    def __call__(self, iterations):
        ops, v = keras.ops, self._vars
        step = ops.cast(iterations, "float32") + v["offset"]
        span = ops.maximum(v["end_step"] - v["start_step"], 1.0)
        done = ops.clip((step - v["start_step"]) / span, 0.0, 1.0)
        progress = ops.clip(v["start_progress"] + (1.0 - v["start_progress"]) * done, 0.0, 1.0)
        warm = 1.0
        if self.warmup_steps > 0:
            warm = ops.minimum(1.0, ops.maximum((step + 1.0) / self.warmup_steps, progress / WARMUP_SHARE))
        return self.base_lr * warm * 0.5 * (1.0 + ops.cos(math.pi * progress))

    def values(self) -> dict:
        """``end_step``, ``offset``, ``start_step`` and ``start_progress`` as floats."""
        return {k: float(keras.ops.convert_to_numpy(v)) for k, v in self._vars.items()}

    def assign(self, **values) -> None:
        for k, value in values.items():
            self._vars[k].assign(float(value))

    def progress(self, step: int, values: dict | None = None) -> float:
        """Where the cosine stands at the fold's ``step`` (0..1), computed in Python from ``values``."""
        v = values or self.values()
        done = min(1.0, max(0.0, (step - v["start_step"]) / max(v["end_step"] - v["start_step"], 1.0)))
        return min(1.0, max(0.0, v["start_progress"] + (1.0 - v["start_progress"]) * done))

    def get_config(self):
        return {"base_lr": self.base_lr, "warmup_steps": self.warmup_steps, **self.values()}


class CosineTimeSchedule(keras.callbacks.Callback):
    """Cosine LR with warm-up whose length is the smaller of ``total_steps`` and the fold's time share.

    The cosine ends (LR reaches 0 and the fold stops) when ``total_steps`` are done or, under ``--max-minutes``,
    when the fold's share of the budget is spent, instead of being cut mid-schedule at a high learning rate.

    The optimizer evaluates the LR itself from a ``TimeCosineSchedule`` (``learning_rate()`` makes one to compile
    with): this callback only re-estimates, every ``refresh_steps`` steps and at each epoch's start (after the
    validation), how many steps the time share still allows (from the fold's average step time, validation and
    checkpoints included), and bends the rest of the curve to end there; the curve never jumps. The share keeps
    room for the fold's last validation, ``reserve_steps`` training steps' worth (a forward pass over the validation
    images costs about a third of a training step per image). An optimizer with
    a plain LR (a resume point saved before the schedule existed) gets it set from Python every batch, with
    ``progress = max(step / total_steps, elapsed / seconds)``.
    """

    def __init__(
        self, base_lr, total_steps, warmup_steps, state: FoldState, seconds=None, refresh_steps=100, reserve_steps=0.0
    ):
        super().__init__()
        self.base_lr, self.total_steps, self.warmup_steps = base_lr, total_steps, warmup_steps
        self.state, self.seconds, self.refresh_steps = state, seconds, max(1, refresh_steps)
        self.reserve_steps = reserve_steps
        self.startup = None  # (elapsed_s, step) after this call's first step
        self.schedule, self.values, self.refreshes = None, None, 0

    def learning_rate(self):
        """What to compile a new optimizer with: a ``TimeCosineSchedule`` continuing from the fold's state."""
        step = self.state.step
        return TimeCosineSchedule(
            self.base_lr,
            self.warmup_steps,
            end_step=step + self._steps_left(),
            offset=step,
            start_step=step,
            start_progress=self._clock_progress(),
        )

    def on_train_begin(self, logs=None):
        self.started = time.monotonic() - self.state.elapsed_s
        self.startup = None
        schedule = getattr(inner_optimizer(self.model.optimizer), "_learning_rate", None)
        self.schedule = schedule if isinstance(schedule, TimeCosineSchedule) else None
        if self.schedule is not None:
            self.values = self.schedule.values()
            self._sync(dict(offset=self.state.step - self._iterations()))

    def _iterations(self) -> int:
        return int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def _training_seconds(self) -> float | None:
        """The share minus the last validation's expected time (never below a twentieth of the share)."""
        if not self.seconds:
            return None
        return max(self.seconds - self.reserve_steps * self._per_step(), self.seconds / 20)

    def _per_step(self) -> float:
        """Seconds a step takes, validations and checkpoints included; after a call's first step, without it: that
        step also traces and compiles the model and loads in-memory images (tens of seconds on a big store)."""
        elapsed, step = self.state.elapsed_s, self.state.step
        if self.startup is not None:  # none known until a second step: 0 keeps the first from stopping the fold
            return (elapsed - self.startup[0]) / (step - self.startup[1]) if step > self.startup[1] else 0.0
        return elapsed / step if step > 0 else 0.0

    def _clock_progress(self) -> float:
        by_steps = self.state.step / self.total_steps
        by_time = self.state.elapsed_s / self._training_seconds() if self.seconds else 0.0
        return min(1.0, max(by_steps, by_time))

    def _steps_left(self) -> float:
        left = self.total_steps - self.state.step
        if self.seconds and self.state.step > 0 and self.state.elapsed_s > 0:
            left = min(left, (self._training_seconds() - self.state.elapsed_s) / max(self._per_step(), 1e-9))
        return max(left, 0.0)

    def _sync(self, values: dict) -> None:
        self.values.update(values)
        self.schedule.assign(**values)
        self.refreshes += 1

    def refresh(self) -> None:
        """Re-estimate where the cosine ends and continue it from where it stands now."""
        if self.schedule is None:
            return
        step = self.state.step
        self._sync(
            dict(
                start_progress=self.schedule.progress(step, self.values),
                start_step=step,
                end_step=step + self._steps_left(),
                offset=step - self._iterations(),  # a step the loss scale skipped does not count an iteration
            )
        )

    def progress(self) -> float:
        by_steps = self.state.step / self.total_steps
        by_time = (time.monotonic() - self.started) / self._training_seconds() if self.seconds else 0.0
        by_schedule = self.schedule.progress(self.state.step, self.values) if self.schedule is not None else 0.0
        return max(by_steps, by_time, by_schedule)

    def on_epoch_begin(self, epoch, logs=None):
        if self.state.step > 0:
            self.refresh()

    def on_train_batch_begin(self, batch, logs=None):
        if self.schedule is None:
            factor = schedule_factor(self.progress(), self.state.step, self.warmup_steps)
            self.model.optimizer.learning_rate = self.base_lr * factor

    def on_train_batch_end(self, batch, logs=None):
        self.state.step += 1
        self.state.elapsed_s = time.monotonic() - self.started
        if self.startup is None:
            self.startup = (self.state.elapsed_s, self.state.step)
        if self.state.step % self.refresh_steps == 0:
            self.refresh()
        if self.progress() >= 1.0:
            self.model.stop_training = True
            self.state.stopped = self.state.stopped or "schedule complete"

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["lr"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


class PlateauSchedule(CosineTimeSchedule):
    """Warm-up, then the LR is halved whenever ``val_score`` has not improved (by ``metric``'s direction) for
    ``patience`` validations.

    Still honours the step and time limits (stops when either is reached). The LR is set from Python, but only
    when it changes.
    """

    def __init__(
        self,
        base_lr,
        total_steps,
        warmup_steps,
        state,
        seconds=None,
        reserve_steps=0.0,
        *,
        metric: Metric,
        patience=2,
        factor=0.5,
    ):
        super().__init__(base_lr, total_steps, warmup_steps, state, seconds, reserve_steps=reserve_steps)
        self.patience, self.factor, self.metric = patience, factor, metric

    def learning_rate(self):
        return float(self.base_lr)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.assigned = None

    def on_train_batch_begin(self, batch, logs=None):
        # assigned only when it changes (warm-up steps, a halving), not every batch
        warm = min(1.0, (self.state.step + 1) / self.warmup_steps) if self.warmup_steps else 1.0
        lr = self.base_lr * warm * self.state.plateau_scale
        if lr != getattr(self, "assigned", None):
            self.model.optimizer.learning_rate = self.assigned = lr

    def on_epoch_end(self, epoch, logs=None):
        score = (logs or {}).get("val_score", float("nan"))
        if np.isfinite(score):
            best = self.state.plateau_best
            if best is None or self.metric.better(score, best):
                self.state.plateau_best, self.state.plateau_wait = score, 0
            else:
                self.state.plateau_wait += 1
                if self.state.plateau_wait >= self.patience:
                    self.state.plateau_scale, self.state.plateau_wait = self.state.plateau_scale * self.factor, 0
        super().on_epoch_end(epoch, logs)


class ResumeCheckpoint(keras.callbacks.Callback):
    """After every epoch saves the model with its optimizer (``last.keras``) and the fold state (``state.json``),
    both atomically, so a killed fold continues from its last finished epoch."""

    def __init__(self, files: FoldFolder, state: FoldState):
        super().__init__()
        self.files, self.state = files, state

    def on_epoch_end(self, epoch, logs=None):
        self.state.epoch = epoch + 1
        self.model.save(self.files.resume_model_tmp)
        os.replace(self.files.resume_model_tmp, self.files.resume_model)
        self.files.write_state(self.state)


class GlobalDeadline(keras.callbacks.Callback):
    """Stops the fold after the current batch once the run's wall-clock deadline has passed."""

    def __init__(self, deadline, state: FoldState):
        super().__init__()
        self.deadline, self.state = deadline, state

    def on_train_batch_end(self, batch, logs=None):
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.model.stop_training = True
            self.state.stopped = "time budget (--max-minutes) spent"


class EpochLog(keras.callbacks.Callback):
    """Prints one line per epoch: the epoch, loss, validation score (only on epochs that validate), learning rate,
    and, under a time budget, how much of the fold's share is used and left (the epoch bound rarely ends a
    budgeted fold, so "epoch 3/80" would mislead). On a terminal a progress bar also runs within each epoch.

    Example:
        fold 0  epoch 3  loss 0.4121  val roc_auc 0.9012 (best 0.9012)  lr 1.8e-03  1.2 of 6.0 min (4.8 left)
    """

    def __init__(self, fold, state: FoldState, last_epoch, seconds=None, steps=None, live=None, metric="roc_auc"):
        super().__init__()
        self.metric = metric
        self.fold, self.state, self.last_epoch, self.seconds, self.steps = fold, state, last_epoch, seconds, steps
        self.live = sys.stdout.isatty() if live is None else live
        self.bar = None

    def on_train_begin(self, logs=None):
        self.started = time.monotonic() - self.state.elapsed_s

    def on_epoch_begin(self, epoch, logs=None):
        if self.live and self.steps:
            self.bar = keras.utils.Progbar(self.steps, stateful_metrics=["loss"], unit_name="step")

    def on_train_batch_end(self, batch, logs=None):
        if self.bar is not None:
            self.bar.update(batch + 1, [("loss", (logs or {}).get("loss", float("nan")))])

    def on_epoch_end(self, epoch, logs=None):
        print(self.line(epoch, logs or {}, time.monotonic() - self.started), flush=True)

    def line(self, epoch: int, logs: dict, elapsed_s: float) -> str:
        """The epoch's line (``epoch`` counts from 0, as Keras does)."""
        parts = [f"fold {self.fold}", f"epoch {epoch + 1}" + ("" if self.seconds else f"/{self.last_epoch}")]
        if "loss" in logs:
            parts.append(f"loss {float(logs['loss']):.4f}")
        score = logs.get("val_score")
        if score is not None and np.isfinite(score):  # NaN: this epoch did not validate (train.val_every)
            best = self.state.best_score
            parts.append(f"val {self.metric} {score:.4f}" + (f" (best {best:.4f})" if best is not None else ""))
        if "lr" in logs:
            parts.append(f"lr {float(logs['lr']):.1e}")
        minutes = elapsed_s / 60
        if self.seconds:
            total = self.seconds / 60
            parts.append(f"{minutes:.1f} of {total:.1f} min ({max(0.0, total - minutes):.1f} left)")
        else:
            parts.append(f"{minutes:.1f} min")
        return "  ".join(parts)
