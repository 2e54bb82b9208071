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
