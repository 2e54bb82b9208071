import numpy as np
import pytest

from kit.metrics import get_metric
from kit.run import FoldFolder, FoldState
from kit.train.callbacks import PlateauSchedule, ValidationScore, schedule_factor


class _ScriptedModel:
    """Stands in for a Keras model: returns the next scripted validation predictions, records saved weights."""

    def __init__(self, predictions):
        self.predictions, self.stop_training, self.saved = list(predictions), False, 0

    def predict(self, data, verbose=0):
        return self.predictions.pop(0)

    def save_weights(self, path):
        self.saved += 1


TARGET = np.array([0, 0, 1, 1])
GOOD, BAD = np.array([0.1, 0.2, 0.8, 0.9]), np.array([0.9, 0.8, 0.2, 0.1])


def _run(predictions, tmp_path, target=TARGET, metric="roc_auc", **kw):
    model, state = _ScriptedModel(predictions), FoldState()
    callback = ValidationScore(None, target, FoldFolder(tmp_path), state, get_metric(metric), **kw)
    callback.set_model(model)
    epochs = 0
    while model.predictions and not model.stop_training:
        logs = {}
        callback.on_epoch_end(epochs, logs)
        epochs += 1
    return model, state, epochs, logs


def test_keeps_the_best_epoch_and_stops_after_patience(tmp_path):
    model, state, epochs, _ = _run([BAD, GOOD, BAD, BAD, BAD, BAD], tmp_path, patience=2)
    assert state.best_epoch == 2 and state.best_score == 1.0 and model.saved == 2
    assert epochs == 4 and "early stopping" in state.stopped
    np.testing.assert_array_equal(np.load(tmp_path / "valid_pred.npy"), GOOD)


def test_a_lower_is_better_metric_keeps_the_lowest_score(tmp_path):
    calibrated, confident_wrong = np.array([0.3, 0.3, 0.7, 0.7]), np.array([0.6, 0.6, 0.4, 0.4])
    _, state, _, logs = _run([confident_wrong, calibrated, BAD], tmp_path, metric="log_loss")
    assert state.best_epoch == 2 and state.best_score == pytest.approx(-np.log(0.7))
    assert logs["val_score"] == pytest.approx(logs["val_loss"])  # log loss scored twice, once as the metric


def test_multiclass_predictions_are_scored_and_kept_per_class(tmp_path):
    target = np.array([0, 1, 2, 2])
    right = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.2, 0.2, 0.6]])
    wrong = right[:, ::-1]
    _, state, _, _ = _run([wrong, right, wrong], tmp_path, target=target, metric="accuracy")
    assert state.best_epoch == 2 and state.best_score == 1.0
    np.testing.assert_array_equal(np.load(tmp_path / "valid_pred.npy"), right)


def test_a_validation_split_without_a_score_never_becomes_best_over_one(tmp_path):
    one_class = np.array([1, 1, 1, 1])  # ROC AUC is undefined: NaN, and any later real score replaces it
    _, state, _, logs = _run([GOOD, GOOD], tmp_path, target=one_class)
    assert np.isnan(logs["val_score"]) and np.isnan(state.best_score)


def test_patience_zero_never_stops_early(tmp_path):
    _, state, epochs, _ = _run([GOOD] + [BAD] * 6, tmp_path, patience=0)
    assert epochs == 7 and state.stopped is None and state.best_epoch == 1


def test_non_finite_predictions_stop_without_becoming_best(tmp_path):
    model, state, epochs, logs = _run([GOOD, np.array([np.nan] * 4), GOOD], tmp_path)
    assert epochs == 2 and state.best_epoch == 1 and "non-finite" in state.stopped and np.isnan(logs["val_score"])


def test_validates_every_n_epochs_and_at_the_last(tmp_path):
    model, state, epochs, _ = _run([BAD, GOOD], tmp_path, every=3, last_epoch=5)  # validates after epochs 3 and 5
    assert epochs == 5 and state.best_epoch == 5


def test_plateau_schedule_halves_the_lr_after_patience_validations_without_improvement():
    class _Model:
        optimizer = type("Optimizer", (), {"learning_rate": 1.0})()

    state = FoldState()
    schedule = PlateauSchedule(1.0, total_steps=100, warmup_steps=0, state=state, metric=get_metric("roc_auc"))
    schedule.set_model(_Model())
    for epoch, auc in enumerate([0.8, 0.9, 0.85, float("nan"), 0.88, 0.87]):
        schedule.on_epoch_end(epoch, {"val_score": auc})  # NaN: an epoch without validation, not counted
    assert state.plateau_best == 0.9 and state.plateau_scale == 0.5 and state.plateau_wait == 1
    schedule.on_train_batch_begin(0)
    assert _Model.optimizer.learning_rate == 0.5


def test_plateau_schedule_follows_a_lower_is_better_metric():
    state = FoldState()
    schedule = PlateauSchedule(1.0, 100, 0, state, patience=2, metric=get_metric("log_loss"))
    schedule.set_model(type("M", (), {"optimizer": type("O", (), {"learning_rate": 1.0})()})())
    for epoch, loss in enumerate([0.6, 0.4, 0.5, 0.45]):
        schedule.on_epoch_end(epoch, {"val_score": loss})
    assert state.plateau_best == 0.4 and state.plateau_scale == 0.5


@pytest.mark.parametrize("progress, step, expected", [(0.0, 0, 0.1), (0.0, 9, 1.0), (0.5, 50, 0.5), (1.0, 99, 0.0)])
def test_schedule_warms_up_linearly_then_follows_a_cosine(progress, step, expected):
    assert schedule_factor(progress, step, warmup_steps=10) == pytest.approx(expected, abs=1e-9)


def test_a_schedule_shorter_than_its_warm_up_warms_up_over_its_first_tenth():
    # a 1,000-step warm-up in a 200-step schedule: warm after 20 steps (a tenth), not never
    assert schedule_factor(0.05, 10, warmup_steps=1000) == pytest.approx(0.5 * 0.5 * (1 + np.cos(np.pi * 0.05)))
    assert schedule_factor(0.1, 20, warmup_steps=1000) == pytest.approx(0.5 * (1 + np.cos(np.pi * 0.1)))
    from kit.train.callbacks import TimeCosineSchedule

    schedule = TimeCosineSchedule(1.0, warmup_steps=1000, end_step=200)
    for step in (0, 10, 20, 100, 199):
        assert float(schedule(step)) == pytest.approx(schedule_factor(step / 200, step, 1000), abs=1e-6)


def test_ema_weights_are_scored_and_saved_then_the_training_weights_come_back(tmp_path):
    import keras

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype("float32")
    y = (x[:, 0] > 0).astype("float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(keras.optimizers.SGD(0.5, use_ema=True, ema_momentum=0.9), "binary_crossentropy")
    for _ in range(5):
        model.train_on_batch(x, y)
    training = [w.copy() for w in model.get_weights()]
    average = [keras.ops.convert_to_numpy(v) for v in model.optimizer._model_variables_moving_average]
    assert not np.allclose(training[0], average[0])
    callback = ValidationScore(x, y.astype(int), FoldFolder(tmp_path), FoldState(), get_metric("roc_auc"))
    callback.set_model(model)
    callback.on_epoch_end(0, {})
    # restored up to rounding: Keras swaps by adding and subtracting in place
    assert all(np.allclose(a, b, rtol=1e-5, atol=1e-6) for a, b in zip(model.get_weights(), training))
    model.load_weights(tmp_path / "best.weights.h5")
    assert all(np.allclose(a, b) for a, b in zip(model.get_weights(), average))  # the saved best is the EMA


def _tiny_model(optimizer, seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer, "binary_crossentropy")
    return model


def _xy(n=64):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3)).astype("float32")
    return x, (x[:, 0] > 0).astype("float32")


def test_ema_weights_are_scored_and_saved_under_mixed_precision(tmp_path):
    import keras

    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        x, y = _xy()
        model = _tiny_model(keras.optimizers.SGD(0.5, use_ema=True, ema_momentum=0.9))
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)  # use_ema False on the wrapper
        for _ in range(5):
            model.train_on_batch(x, y)
        training = [w.copy() for w in model.get_weights()]
        inner = model.optimizer.inner_optimizer
        average = [keras.ops.convert_to_numpy(v) for v in inner._model_variables_moving_average]
        assert not np.allclose(training[0], average[0])
        state = FoldState()
        callback = ValidationScore(x, y.astype(int), FoldFolder(tmp_path), state, get_metric("roc_auc"))
        callback.set_model(model)
        callback.on_epoch_end(0, {})
        assert state.best_epoch == 1
        assert all(np.allclose(a, b, rtol=1e-5, atol=1e-6) for a, b in zip(model.get_weights(), training))
        model.load_weights(tmp_path / "best.weights.h5")
        assert all(np.allclose(a, b) for a, b in zip(model.get_weights(), average))  # the saved best is the EMA
    finally:
        keras.mixed_precision.set_global_policy(policy)


def test_time_cosine_schedule_follows_schedule_factor_and_round_trips():
    import keras

    from kit.train.callbacks import TimeCosineSchedule

    schedule = TimeCosineSchedule(2.0, warmup_steps=10, end_step=100)
    for step in [0, 5, 9, 10, 37, 50, 99, 100, 150]:
        expected = 2.0 * schedule_factor(step / 100, step, 10)
        assert float(schedule(step)) == pytest.approx(expected, abs=1e-5), step
    bent = TimeCosineSchedule(1.0, 0, end_step=80, offset=30, start_step=40, start_progress=0.25)
    # fold step 40 (iteration 10) is at progress 0.25; the rest runs linearly to 1 at step 80
    assert float(bent(10)) == pytest.approx(schedule_factor(0.25, 40, 0), abs=1e-6)
    assert float(bent(30)) == pytest.approx(schedule_factor(0.625, 60, 0), abs=1e-6)
    assert float(bent(50)) == pytest.approx(0.0, abs=1e-6)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(bent))
    assert isinstance(again, TimeCosineSchedule) and again.get_config() == bent.get_config()


def _count_assignments(model):
    optimizer, counter = model.optimizer, {"n": 0}
    cls = type(optimizer)

    class Counting(cls):
        @property
        def learning_rate(self):
            return cls.learning_rate.fget(self)

        @learning_rate.setter
        def learning_rate(self, value):
            counter["n"] += 1
            cls.learning_rate.fset(self, value)

    optimizer.__class__ = Counting
    return counter


def test_cosine_lr_is_evaluated_by_the_optimizer_not_assigned_per_batch():
    import keras

    from kit.train.callbacks import CosineTimeSchedule

    x, y = _xy(32 * 8)
    state = FoldState()
    callback = CosineTimeSchedule(1e-2, total_steps=24, warmup_steps=4, state=state, refresh_steps=100)
    model = _tiny_model(keras.optimizers.SGD(callback.learning_rate()))
    counter = _count_assignments(model)
    history = model.fit(x, y, batch_size=32, epochs=3, callbacks=[callback], verbose=0)
    assert counter["n"] == 0 and state.step == 24 and state.stopped == "schedule complete"
    assert callback.refreshes <= 3  # the train begin and two epoch starts, not one per batch
    lrs = history.history["lr"]
    assert lrs[0] == pytest.approx(1e-2 * schedule_factor(8 / 24, 8, 4), rel=1e-4)
    assert lrs[-1] == pytest.approx(0.0, abs=1e-7)


def test_a_resumed_fold_continues_the_cosine(tmp_path):
    import keras

    from kit.train.callbacks import CosineTimeSchedule

    x, y = _xy(32 * 4)
    state = FoldState()
    callback = CosineTimeSchedule(1e-2, total_steps=20, warmup_steps=2, state=state)
    model = _tiny_model(keras.optimizers.AdamW(callback.learning_rate()))
    model.fit(x, y, batch_size=32, epochs=2, callbacks=[callback], verbose=0)
    model.save(tmp_path / "last.keras")
    assert state.step == 8
    resumed = keras.saving.load_model(tmp_path / "last.keras")
    callback = CosineTimeSchedule(1e-2, total_steps=20, warmup_steps=2, state=state)
    history = resumed.fit(x, y, batch_size=32, epochs=5, initial_epoch=2, callbacks=[callback], verbose=0)
    expected = [1e-2 * schedule_factor(s / 20, s, 2) for s in (12, 16, 20)]
    np.testing.assert_allclose(history.history["lr"], expected, atol=1e-7)
    assert state.step == 20 and state.stopped == "schedule complete"


def test_the_cosine_ends_when_the_time_share_is_spent():
    import keras

    from kit.train.callbacks import CosineTimeSchedule

    x, y = _xy(32 * 4)
    state = FoldState(step=100, elapsed_s=100.0)  # 1 s a step so far, 10 s of the share left: 10 more steps
    callback = CosineTimeSchedule(1e-2, total_steps=10_000, warmup_steps=0, state=state, seconds=110.0)
    schedule = callback.learning_rate()
    assert schedule.values()["end_step"] == pytest.approx(110) and schedule.progress(100) == pytest.approx(100 / 110)
    model = _tiny_model(keras.optimizers.SGD(schedule))
    callback.set_model(model)
    callback.on_train_begin()
    assert schedule.values()["offset"] == 100
    assert float(schedule(10)) == pytest.approx(0.0, abs=1e-7)  # the optimizer's step 10 is the fold's step 110


def test_the_share_keeps_room_for_the_last_validation():
    from kit.train.callbacks import CosineTimeSchedule

    # 1 s a step so far; the validation is worth 4 steps, so of the 110 s share 106 are for training: 6 more steps
    state = FoldState(step=100, elapsed_s=100.0)
    callback = CosineTimeSchedule(1e-2, total_steps=10_000, warmup_steps=0, state=state, seconds=110.0, reserve_steps=4)
    assert callback.learning_rate().values()["end_step"] == pytest.approx(106)
    # a reserve larger than the share leaves a twentieth of it for training, never a negative time
    huge = CosineTimeSchedule(1e-2, 10_000, 0, FoldState(step=100, elapsed_s=100.0), seconds=110.0, reserve_steps=500)
    assert huge._training_seconds() == pytest.approx(5.5)


def test_the_step_time_leaves_out_the_first_step_that_loads_and_compiles(monkeypatch):
    import kit.train.callbacks as callbacks

    clock = [0.0]
    monkeypatch.setattr(callbacks.time, "monotonic", lambda: clock[0])
    state = FoldState()
    schedule = callbacks.CosineTimeSchedule(1e-2, 10_000, 0, state, seconds=200.0, reserve_steps=50)
    schedule.schedule = None  # the Python path: no optimizer needed
    model = type("M", (), {"stop_training": False})()
    schedule.set_model(model)
    schedule.started = 0.0
    clock[0] = 50.0  # the first step: in-memory images loaded, the step traced and compiled
    schedule.on_train_batch_end(0)
    for _ in range(10):  # then 1 s a step
        clock[0] += 1.0
        schedule.on_train_batch_end(0)
    assert schedule._per_step() == pytest.approx(1.0)
    # the last validation (50 steps' worth) is reserved at 1 s a step, not at the 5.5 s average with the start
    assert schedule._training_seconds() == pytest.approx(150.0)
    assert not model.stop_training
