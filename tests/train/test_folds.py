import numpy as np
import pandas as pd
import pytest

from kit.errors import KitError
from kit.train.folds import check_folds, fold_rows, make_folds


def _ids(n):
    return [f"id{k}" for k in range(n)]


@pytest.mark.parametrize("k", [2, 5])
def test_stratified_folds_are_sound_and_balanced(k):
    labels = (np.arange(200) % 4 == 0).astype(int)  # 25% positives
    folds = make_folds(_ids(200), labels, k=k, seed=0)
    check_folds(folds, k, ids=_ids(200))
    for f in range(k):
        train, valid = fold_rows(folds, f)
        assert not set(train) & set(valid) and len(train) + len(valid) == 200
        assert labels[valid].mean() == pytest.approx(0.25, abs=0.03)


def test_folds_are_reproducible_for_a_seed():
    labels = np.arange(100) % 2
    a, b = make_folds(_ids(100), labels, 5, seed=3), make_folds(_ids(100), labels, 5, seed=3)
    assert a.equals(b)
    assert not a.equals(make_folds(_ids(100), labels, 5, seed=4))


def test_grouped_folds_never_split_a_group():
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 30, 300).astype(str)
    labels = rng.integers(0, 2, 300)
    folds = make_folds(_ids(300), labels, k=5, seed=0, groups=groups)
    check_folds(folds, 5, ids=_ids(300))
    assert (folds.groupby("group")["fold"].nunique() == 1).all()


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda f: pd.concat([f, f.iloc[:1]]), "more than once"),
        (lambda f: f.iloc[1:], "do not cover"),
        (lambda f: f.assign(fold=f["fold"].where(f["fold"] != 1, 0)), "expected folds 0..2"),
        (lambda f: f.assign(group=["g0"] * len(f)), "groups split"),
    ],
)
def test_check_folds_catches_each_broken_invariant(damage, message):
    folds = make_folds(_ids(60), np.arange(60) % 2, k=3, seed=0)
    with pytest.raises(KitError, match=message):
        check_folds(damage(folds), 3, ids=_ids(60))


def test_too_few_of_a_class_for_k_folds_is_a_clear_error():
    with pytest.raises(KitError, match="rarest class"):
        make_folds(_ids(20), [1, 1] + [0] * 18, k=5, seed=0)


def test_class_indices_keep_their_folds():
    """The multilabel branch must not change the class-index folds: pinned fold sizes and the fold of a few ids."""
    labels = np.arange(30) % 3
    folds = make_folds(_ids(30), labels, k=3, seed=0)
    assert folds["fold"].value_counts().sort_index().tolist() == [10, 10, 10]
    assert folds["fold"].tolist() == _pinned_fold_column(labels)


def _pinned_fold_column(labels):
    from sklearn.model_selection import StratifiedKFold

    fold = np.full(len(labels), -1)
    splitter = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    for f, (_, valid) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
        fold[valid] = f
    return fold.tolist()


def test_multiclass_folds_keep_each_class_share():
    rng = np.random.default_rng(1)
    labels = rng.choice(4, size=400, p=[0.55, 0.25, 0.15, 0.05])
    folds = make_folds(_ids(400), labels, k=5, seed=0)
    check_folds(folds, 5, ids=_ids(400))
    overall = np.bincount(labels, minlength=4)
    for f in range(5):
        _, valid = fold_rows(folds, f)
        per_fold = np.bincount(labels[valid], minlength=4)
        assert np.all(np.abs(per_fold - overall / 5) <= 1), (f, per_fold, overall / 5)


def _multi_hot(n, rates, seed=0):
    return (np.random.default_rng(seed).random((n, len(rates))) < rates).astype(np.uint8)


@pytest.mark.parametrize("k", [3, 5])
def test_multilabel_folds_spread_each_labels_positives(k):
    labels = _multi_hot(600, [0.5, 0.3, 0.1, 0.05, 0.03, 0.02])
    folds = make_folds(_ids(600), labels, k=k, seed=0)
    check_folds(folds, k, ids=_ids(600))
    assert folds["id"].tolist() == _ids(600) and "group" not in folds
    positives = labels.sum(axis=0)
    for f in range(k):
        _, valid = fold_rows(folds, f)
        per_fold = labels[valid].sum(axis=0)
        assert (per_fold > 0).all()
        assert np.all(np.abs(per_fold - positives / k) <= 1.5), (f, per_fold, positives / k)
        assert abs(len(valid) - 600 / k) <= 2


def test_multilabel_folds_are_reproducible_for_a_seed():
    labels = _multi_hot(200, [0.4, 0.2, 0.1])
    a, b = make_folds(_ids(200), labels, 4, seed=3), make_folds(_ids(200), labels, 4, seed=3)
    assert a.equals(b)
    assert not a.equals(make_folds(_ids(200), labels, 4, seed=4))


def test_a_single_label_column_is_stratified_like_a_binary_vector():
    labels = (np.arange(100) % 4 == 0).astype(int)
    column = make_folds(_ids(100), labels[:, None], 5, seed=2)
    assert column.equals(make_folds(_ids(100), labels, 5, seed=2))


def test_grouped_multiclass_folds_never_split_a_group_and_keep_every_class():
    rng = np.random.default_rng(2)
    groups = rng.integers(0, 60, 400).astype(str)
    labels = rng.integers(0, 3, 400)
    folds = make_folds(_ids(400), labels, k=4, seed=0, groups=groups)
    check_folds(folds, 4, ids=_ids(400))
    assert (folds.groupby("group")["fold"].nunique() == 1).all()
    assert all(len(np.unique(labels[fold_rows(folds, f)[1]])) == 3 for f in range(4))


@pytest.mark.parametrize(
    "labels, kwargs, message",
    [
        (_multi_hot(100, [0.5, 0.3]), {"groups": [f"g{i % 10}" for i in range(100)]}, "expected no groups.*Fix:"),
        (np.array([[1, 0]] * 50 + [[0, 1]] * 3), {}, r"rarest label \(column 1\) has 3 positive.*folds.k=5"),
        (np.zeros((50, 3), np.uint8), {}, "expected some positive labels"),
        (np.full((50, 2), 2), {}, r"expected multi-hot labels of 0 and 1 only, got values \['2'\]"),
        (np.zeros((50, 2, 2)), {}, r"expected labels of shape \(N,\).*got shape \(50, 2, 2\)"),
        (np.arange(40) % 2, {"k": 1}, "expected folds.k >= 2"),
    ],
)
def test_bad_labels_are_refused_with_the_fix(labels, kwargs, message):
    kwargs = {"k": 5, **kwargs}
    with pytest.raises(KitError, match=message):
        make_folds(_ids(len(labels)), labels, seed=0, **kwargs)


def test_ids_and_labels_of_different_lengths_are_refused():
    with pytest.raises(KitError, match="60 label rows for 59 ids"):
        make_folds(_ids(59), np.arange(60) % 2, k=3, seed=0)


def test_a_multilabel_column_set_on_every_or_no_image_is_refused_before_training():
    labels = np.zeros((12, 3), np.int64)
    labels[:, 0] = 1  # every image has label 0: its AUC is undefined on every fold
    labels[::2, 1] = 1
    labels[1::3, 2] = 1
    with pytest.raises(KitError, match=r"got columns \[0\] the same on every image"):
        make_folds([f"i{k}" for k in range(12)], labels, k=2, seed=0)
