import numpy as np
import pytest

from kit.callbacks import ValidationAUC, schedule_factor


class _ScriptedModel:
    """Stands in for a Keras model: returns the next scripted validation predictions, records saved weights."""

    def __init__(self, predictions):
        self.predictions, self.stop_training, self.saved = list(predictions), False, 0

    def predict(self, data, verbose=0):
        return self.predictions.pop(0)

    def save_weights(self, path):
        self.saved += 1


TARGET = np.array([0, 0, 1, 1], np.float32)
GOOD, BAD = np.array([0.1, 0.2, 0.8, 0.9]), np.array([0.9, 0.8, 0.2, 0.1])


def _run(predictions, tmp_path, **kw):
    model, state = _ScriptedModel(predictions), {}
    callback = ValidationAUC(None, TARGET, tmp_path, state, **kw)
    callback.set_model(model)
    epochs = 0
    while model.predictions and not model.stop_training:
        logs = {}
        callback.on_epoch_end(epochs, logs)
        epochs += 1
    return model, state, epochs, logs


def test_keeps_the_best_epoch_and_stops_after_patience(tmp_path):
    model, state, epochs, _ = _run([BAD, GOOD, BAD, BAD, BAD, BAD], tmp_path, patience=2)
    assert state["best_epoch"] == 2 and state["best_auc"] == 1.0 and model.saved == 2
    assert epochs == 4 and "early stopping" in state["stopped"]
    np.testing.assert_array_equal(np.load(tmp_path / "valid_pred.npy"), GOOD)


def test_patience_zero_never_stops_early(tmp_path):
    _, state, epochs, _ = _run([GOOD] + [BAD] * 6, tmp_path, patience=0)
    assert epochs == 7 and "stopped" not in state and state["best_epoch"] == 1


def test_non_finite_predictions_stop_without_becoming_best(tmp_path):
    model, state, epochs, logs = _run([GOOD, np.array([np.nan] * 4), GOOD], tmp_path)
    assert epochs == 2 and state["best_epoch"] == 1 and "non-finite" in state["stopped"] and np.isnan(logs["val_auc"])


def test_validates_every_n_epochs_and_at_the_last(tmp_path):
    model, state, epochs, _ = _run([BAD, GOOD], tmp_path, every=3, last_epoch=5)  # validates after epochs 3 and 5
    assert epochs == 5 and state["best_epoch"] == 5


@pytest.mark.parametrize("progress, step, expected", [(0.0, 0, 0.1), (0.0, 9, 1.0), (0.5, 50, 0.5), (1.0, 99, 0.0)])
def test_schedule_warms_up_linearly_then_follows_a_cosine(progress, step, expected):
    assert schedule_factor(progress, step, warmup_steps=10) == pytest.approx(expected, abs=1e-9)
