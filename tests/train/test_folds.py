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
