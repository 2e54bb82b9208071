import numpy as np
import pytest
from sklearn.metrics import roc_auc_score as roc_auc

from kit.errors import KitError
from kit.infer.hill_climb import cross_fit, fold_halves, hill_climb


def _members(n_members: int, n_rows: int, signal: float, seed: int = 0):
    """Targets, (n_members, n_rows) predictions each `signal` apart from noise, and 4 folds (balanced classes)."""
    rng = np.random.default_rng(seed)
    target = np.arange(n_rows) % 2
    oof = 1 / (1 + np.exp(-(signal * (target - 0.5) + rng.normal(size=(n_members, n_rows)))))
    folds = rng.permutation(np.arange(n_rows) % 4)
    return target, oof, folds


def test_hill_climb_starts_at_the_best_member_and_weights_sum_to_one():
    target, oof, _ = _members(5, 200, 1.0)
    oof[2] = 1 / (1 + np.exp(-(4 * (target - 0.5) + np.random.default_rng(9).normal(size=200))))  # clearly best
    fit = hill_climb(target, oof, roc_auc, iterations=10, names=list("abcde"))
    assert fit.history[0]["added"] == "c" and fit.weights.sum() == pytest.approx(1.0)
    assert len(fit.history) <= 11 and fit.counts.sum() == len(fit.history)
    assert roc_auc(target, fit.weights @ oof) >= max(roc_auc(target, p) for p in oof)


@pytest.mark.parametrize("k", [2, 3, 4, 5, 10])
def test_fold_halves_cover_every_fold_once(k):
    folds = np.random.default_rng(k).permutation(np.arange(10 * k) % k)
    first, second = fold_halves(folds)
    assert sorted(first.tolist() + second.tolist()) == list(range(k))  # every fold, none twice
    assert abs(len(first) - len(second)) <= 1


def test_cross_fit_scores_each_half_with_the_other_halfs_weights():
    target, oof, folds = _members(6, 160, 1.0)
    crossed = cross_fit(target, oof, folds, roc_auc, iterations=20)
    held = [h["folds"] for h in crossed.halves]
    assert sorted(held[0] + held[1]) == [0, 1, 2, 3]  # each fold held out exactly once
    assert [h["fitted_on"] for h in crossed.halves] == held[::-1]
    assert np.isfinite(crossed.pred).all() and crossed.score == pytest.approx(roc_auc(target, crossed.pred))
    for half in crossed.halves:
        rows = np.isin(folds, half["folds"])
        weights = np.array(list(half["weights"].values()))
        np.testing.assert_allclose(crossed.pred[rows], weights @ oof[:, rows])


def test_cross_fit_never_lets_a_row_choose_its_own_weights():
    target, oof, folds = _members(8, 160, 0.8)
    crossed = cross_fit(target, oof, folds, roc_auc)
    first = np.isin(folds, crossed.halves[0]["folds"])
    flipped = target.copy()
    flipped[first] = np.random.default_rng(1).permutation(flipped[first])  # new labels for the first half only
    again = cross_fit(flipped, oof, folds, roc_auc)
    np.testing.assert_allclose(again.pred[first], crossed.pred[first])  # its predictions did not move


def test_in_sample_hill_climbing_overfits_many_noisy_members_and_cross_fitting_shows_it():
    # 40 members with no signal on 48 rows: any gain of the climb over chance is fitted noise.
    target, oof, folds = _members(40, 48, 0.0, seed=3)
    in_sample = roc_auc(target, hill_climb(target, oof, roc_auc).weights @ oof)
    honest = cross_fit(target, oof, folds, roc_auc).score
    assert in_sample > 0.75  # figures of this seed: in-sample 0.78, cross-fitted 0.48
    assert honest < in_sample - 0.2 and abs(honest - 0.5) < 0.15


def test_fold_halves_refuses_a_single_fold():
    with pytest.raises(KitError, match=r"expected at least 2 folds.*got \[0\].*Fix:"):
        fold_halves(np.zeros(10, int))
