"""kit.metrics: every registered metric against scikit-learn's own function, on each task it supports; directions,
hard labels and the errors (unsupported task, NaN predictions, one-class AUC, unknown name, duplicate name)."""

import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

import kit.metrics
from kit.errors import KitError
from kit.metrics import Metric, as_matrix, get_metric, hard_labels, list_metrics, register_metric

N, K, C = 120, 4, 3  # rows, classes (multiclass), label columns (multilabel)


def _data(task: str, seed: int = 0):
    """Targets and informative (but imperfect) probabilities: binary (N,) + (N,), multiclass (N,) + (N, K) rows
    summing to 1, multilabel (N, C) multi-hot + (N, C)."""
    rng = np.random.default_rng(seed)
    if task == "binary":
        target = rng.integers(0, 2, N)
        return target, np.clip(0.35 * target + 0.65 * rng.random(N), 0.0, 1.0)
    if task == "multiclass":
        target = rng.integers(0, K, N)
        proba = rng.dirichlet(np.ones(K), N) + 0.6 * np.eye(K)[target]
        return target, proba / proba.sum(axis=1, keepdims=True)
    target = (rng.random((N, C)) < [0.5, 0.3, 0.2]).astype(np.int64)
    return target, np.clip(0.35 * target + 0.65 * rng.random((N, C)), 0.0, 1.0)


def _binary_log_loss(target, p):
    return skm.log_loss(target, p, labels=[0, 1])


# What each (metric, task) must equal, written with scikit-learn directly (binary: p is the positive-class vector).
REFERENCE = {
    ("roc_auc", "binary"): lambda t, p: skm.roc_auc_score(t, p),
    ("auc_macro_ovr", "multiclass"): lambda t, p: skm.roc_auc_score(t, p, multi_class="ovr", average="macro"),
    ("auc_micro_ovr", "multiclass"): lambda t, p: skm.roc_auc_score(t, p, multi_class="ovr", average="micro"),
    ("mean_column_auc", "multilabel"): lambda t, p: skm.roc_auc_score(t, p, average="macro"),
    ("log_loss", "binary"): _binary_log_loss,
    ("log_loss", "multiclass"): lambda t, p: skm.log_loss(t, p),
    ("log_loss", "multilabel"): lambda t, p: np.mean([_binary_log_loss(t[:, c], p[:, c]) for c in range(C)]),
    ("accuracy", "binary"): lambda t, p: skm.accuracy_score(t, p >= 0.5),
    ("accuracy", "multiclass"): lambda t, p: skm.accuracy_score(t, p.argmax(axis=1)),
    ("accuracy", "multilabel"): lambda t, p: skm.accuracy_score(t, (p >= 0.5).astype(int)),
    ("micro_f1", "binary"): lambda t, p: skm.f1_score(t, p >= 0.5, average="micro"),
    ("micro_f1", "multiclass"): lambda t, p: skm.f1_score(t, p.argmax(axis=1), average="micro"),
    ("micro_f1", "multilabel"): lambda t, p: skm.f1_score(t, (p >= 0.5).astype(int), average="micro"),
    ("macro_f1", "binary"): lambda t, p: skm.f1_score(t, p >= 0.5, average="macro"),
    ("macro_f1", "multiclass"): lambda t, p: skm.f1_score(t, p.argmax(axis=1), average="macro"),
    ("macro_f1", "multilabel"): lambda t, p: skm.f1_score(t, (p >= 0.5).astype(int), average="macro"),
    ("balanced_accuracy", "binary"): lambda t, p: skm.balanced_accuracy_score(t, p >= 0.5),
    ("balanced_accuracy", "multiclass"): lambda t, p: skm.balanced_accuracy_score(t, p.argmax(axis=1)),
    ("qwk", "binary"): lambda t, p: skm.cohen_kappa_score(t, (p >= 0.5).astype(int), weights="quadratic"),
    ("qwk", "multiclass"): lambda t, p: skm.cohen_kappa_score(t, p.argmax(axis=1), weights="quadratic"),
}


SUPPORTED = sorted((name, task) for name in list_metrics() for task in get_metric(name).tasks)
UNSUPPORTED = sorted(
    (name, task) for name in list_metrics() for task in kit.metrics.TASKS if (name, task) not in SUPPORTED
)


def test_every_registered_metric_and_task_has_a_reference():
    assert sorted(REFERENCE) == SUPPORTED
    assert list_metrics() == [
        "accuracy", "auc_macro_ovr", "auc_micro_ovr", "balanced_accuracy", "log_loss", "macro_f1",
        "mean_column_auc", "micro_f1", "qwk", "roc_auc",
    ]  # fmt: skip


def test_list_metrics_filters_by_task():
    assert list_metrics("binary") == [
        "accuracy", "balanced_accuracy", "log_loss", "macro_f1", "micro_f1", "qwk", "roc_auc",
    ]  # fmt: skip
    assert list_metrics("multiclass") == [
        "accuracy", "auc_macro_ovr", "auc_micro_ovr", "balanced_accuracy", "log_loss", "macro_f1", "micro_f1", "qwk",
    ]  # fmt: skip
    assert list_metrics("multilabel") == ["accuracy", "log_loss", "macro_f1", "mean_column_auc", "micro_f1"]


@pytest.mark.parametrize("name, task", SUPPORTED)
def test_metric_matches_scikit_learn(name, task):
    target, proba = _data(task)
    expected = REFERENCE[name, task](target, proba)
    metric = get_metric(name)
    if task == "binary":  # the positive class as a vector and as a 1-column matrix score the same
        assert metric(target, proba) == pytest.approx(expected, rel=1e-9, abs=1e-12)
        assert metric(target, proba[:, None]) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    else:
        assert metric(target, proba) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert metric(target, proba, task=task) == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name, task", SUPPORTED)
def test_good_predictions_score_better_than_bad_ones(name, task):
    """The direction agrees with the scores: a near-perfect model beats the data's noisy one, which beats a
    model that predicts the wrong class."""
    target, proba = _data(task, seed=1)
    if task == "multiclass":
        good = 0.05 + 0.8 * np.eye(K)[target]
        wrong = 0.05 + 0.8 * np.eye(K)[(target + 1) % K]
        good, wrong = good / good.sum(axis=1, keepdims=True), wrong / wrong.sum(axis=1, keepdims=True)
    else:
        good, wrong = 0.1 + 0.8 * target, 0.9 - 0.8 * target
    metric = get_metric(name)
    scores = [metric(target, p) for p in (good, proba, wrong)]
    assert metric.better(scores[0], scores[1]) and metric.better(scores[1], scores[2]), scores


@pytest.mark.parametrize("name", list_metrics())
def test_direction_better_and_worst(name):
    metric = get_metric(name)
    assert metric.higher_is_better is (name != "log_loss")
    high, low = 0.9, 0.1
    assert metric.better(high, low) is metric.higher_is_better
    assert metric.better(low, high) is not metric.higher_is_better
    assert not metric.better(0.5, 0.5)  # strictly better
    assert metric.worst == (-np.inf if metric.higher_is_better else np.inf)
    assert metric.better(high, metric.worst) and metric.better(low, metric.worst)
    assert metric.needs == ("proba" if "auc" in name or name == "log_loss" else "labels")


def test_log_loss_is_lower_is_better():
    log_loss = get_metric("log_loss")
    assert log_loss.better(0.2, 0.3) and not log_loss.better(0.3, 0.2)
    assert log_loss.worst == np.inf
    target = np.array([0, 1, 1, 0])
    assert log_loss(target, [0.1, 0.9, 0.8, 0.3]) == pytest.approx(-np.mean(np.log([0.9, 0.9, 0.8, 0.7])), rel=1e-12)


def test_hard_labels_per_task():
    assert hard_labels([0.2, 0.5, 0.7], "binary").tolist() == [0, 1, 1]  # 0.5 is positive
    assert hard_labels([[0.2], [0.5], [0.49]], "binary").tolist() == [0, 1, 0]
    assert hard_labels([[0.8, 0.2], [0.3, 0.7]], "binary").tolist() == [0, 1]  # the last column is the positive
    assert hard_labels([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3], [0.1, 0.1, 0.8]], "multiclass").tolist() == [1, 0, 2]
    assert hard_labels([[0.2, 0.5, 0.9], [0.6, 0.49, 0.0]], "multilabel").tolist() == [[0, 1, 1], [1, 0, 0]]
    assert hard_labels([0.2, 0.5, 0.7], "binary").dtype == np.int64


def test_as_matrix_makes_a_vector_one_column():
    assert as_matrix([0.2, 0.9]).tolist() == [[0.2], [0.9]]
    assert as_matrix([[1, 2], [3, 4]]).dtype == np.float64


def test_metrics_on_labels_threshold_themselves():
    """Hand-checked values: the engine passes probabilities, the metric thresholds."""
    target = np.array([1, 1, 0, 0])
    proba = np.array([0.5, 0.4, 0.6, 0.1])  # predicted labels 1, 0, 1, 0
    assert get_metric("accuracy")(target, proba) == 0.5
    assert get_metric("balanced_accuracy")(target, proba) == 0.5
    multi_target = np.array([[1, 0, 1], [0, 1, 0]])
    multi_proba = np.array([[0.9, 0.2, 0.6], [0.1, 0.7, 0.7]])  # row 0 right, row 1 one extra label
    assert get_metric("accuracy")(multi_target, multi_proba) == 0.5  # subset accuracy
    assert get_metric("micro_f1")(multi_target, multi_proba) == pytest.approx(2 * 3 / (2 * 3 + 1))


@pytest.mark.parametrize("name, task", UNSUPPORTED)
def test_an_unsupported_task_names_the_metrics_that_fit(name, task):
    target, proba = _data(task)
    with pytest.raises(KitError, match=f"metric '{name}', got {task}") as caught:
        get_metric(name)(target, proba)
    message = str(caught.value)
    assert f"({', '.join(list_metrics(task))})" in message and "Fix:" in message


def test_an_unsupported_task_given_explicitly_is_refused():
    target, proba = _data("binary")
    with pytest.raises(KitError, match="got multilabel.*accuracy, log_loss, macro_f1, mean_column_auc, micro_f1"):
        get_metric("roc_auc")(target, proba, task="multilabel")


@pytest.mark.parametrize("name, task", SUPPORTED)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_predictions_are_refused(name, task, bad):
    target, proba = _data(task)
    proba = as_matrix(proba).copy()
    proba[7, 0] = bad
    with pytest.raises(KitError, match=f"cannot score {name}: the predictions hold NaN/inf"):
        get_metric(name)(target, proba)


def test_one_prediction_per_row():
    target, proba = _data("multiclass")
    with pytest.raises(KitError, match=f"got {N - 1} predictions for {N} rows"):
        get_metric("accuracy")(target, proba[:-1])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
@pytest.mark.parametrize(
    "name, target, proba",
    [
        ("roc_auc", np.zeros(10, int), np.linspace(0, 1, 10)),
        ("roc_auc", np.ones(10, int), np.linspace(0, 1, 10)[:, None]),
        ("mean_column_auc", np.column_stack([np.arange(10) % 2, np.zeros(10, int)]), np.full((10, 2), 0.3)),
        ("auc_macro_ovr", np.arange(9) % 2, np.full((9, 3), 1 / 3)),  # class 2 never occurs
    ],
)
def test_auc_on_a_one_class_split_is_a_kit_error(name, target, proba):
    with pytest.raises(KitError, match=f"cannot score {name} on these {len(target)} rows.*Fix:"):
        get_metric(name)(target, proba)


def test_an_unknown_metric_lists_the_known_ones():
    with pytest.raises(KitError, match="unknown metric 'auc'") as caught:
        get_metric("auc")
    assert f"known: {', '.join(list_metrics())}." in str(caught.value)


def test_a_second_metric_of_the_same_name_is_refused(monkeypatch):
    monkeypatch.setattr(kit.metrics, "_METRICS", dict(kit.metrics._METRICS))
    original = get_metric("accuracy")
    clone = Metric("accuracy", False, "labels", ("binary",), "a clash", lambda t, p, task: 0.0)
    with pytest.raises(KitError, match="a second 'accuracy'"):
        register_metric(clone)
    assert get_metric("accuracy") is original
    new = Metric("always_one", True, "proba", ("binary",), "a test metric", lambda t, p, task: 1.0)
    assert register_metric(new) is new and get_metric("always_one")([0, 1], [0.2, 0.8]) == 1.0
    assert "always_one" in list_metrics("binary") and "always_one" not in list_metrics("multiclass")


def test_the_registry_is_untouched_by_the_registration_test():
    assert "always_one" not in list_metrics()


# Known defects of kit/metrics.py (reported, not fixed here): strict, so fixing one turns its test red until the
# marker is removed.


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_qwk_on_a_single_class_split_is_a_kit_error():
    with pytest.raises(KitError):
        get_metric("qwk")(np.zeros(10, int), np.full((10, 3), [0.8, 0.1, 0.1]))


@pytest.mark.parametrize("name", ["mean_column_auc", "log_loss"])
def test_multilabel_predictions_need_one_column_per_label(name):
    target, proba = _data("multilabel")
    with pytest.raises(KitError):
        get_metric(name)(target, proba[:, :1])


def test_a_class_index_beyond_the_probability_columns_is_a_kit_error():
    target, proba = _data("multiclass")
    target = target.copy()
    target[0] = K
    with pytest.raises(KitError):
        get_metric("auc_micro_ovr")(target, proba)
