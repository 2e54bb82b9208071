import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from kit.errors import KitError
from kit.infer import ensemble
from kit.infer.ensemble import METHODS, blend_and_submit, ensemble_runs, format_report, write_ensemble
from kit.infer.fold_average import average_folds, rank_normalise
from kit.infer.run_predictions import load_run

N_TRAIN, N_TEST, K = 240, 60, 4
RNG = np.random.default_rng(0)
TARGET = (np.arange(N_TRAIN) % 3 == 0).astype(int)
TRAIN_IDS = [f"t{i:04d}" for i in range(N_TRAIN)]
TEST_IDS = [f"x{i:04d}" for i in range(N_TEST)][::-1]  # submission order is not sorted order


def _noisy(signal: float, seed: int, n: int, target=None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = target if target is not None else rng.integers(0, 2, n)
    return 1 / (1 + np.exp(-(signal * (base - 0.5) + rng.normal(size=n))))


@pytest.fixture
def make_run(tmp_path):
    """Write a tiny finished run folder: config.toml, folds.csv, oof.csv, test_pred.csv, metrics.json."""

    def make(
        name, signal=2.0, seed=0, oof=None, fold_seed=0, train_ids=TRAIN_IDS, test_ids=TEST_IDS, skip=(), parent=None
    ):
        run = (parent or tmp_path / "runs" / "pcam") / name
        run.mkdir(parents=True)
        fold = np.random.default_rng(fold_seed).permutation(np.arange(len(train_ids)) % K)
        (run / "config.toml").write_text('competition = "pcam"\nname = "x"\n')
        pd.DataFrame({"id": train_ids, "fold": fold}).to_csv(run / "folds.csv", index=False)
        pred = _noisy(signal, seed, len(train_ids), TARGET[: len(train_ids)]) if oof is None else oof
        table = pd.DataFrame({"id": train_ids, "fold": fold, "target": TARGET[: len(train_ids)], "pred": pred})
        table.sample(frac=1, random_state=seed).to_csv(run / "oof.csv", index=False)  # order must not matter
        test = pd.DataFrame({"id": test_ids, "pred": _noisy(signal, seed + 100, len(test_ids))})
        test.to_csv(run / "test_pred.csv", index=False)
        score = roc_auc_score(table["target"], np.nan_to_num(pred))
        (run / "metrics.json").write_text(json.dumps({"oof_score": score, "tta": "d4"}))
        for f in skip:
            (run / f).unlink()
        return run

    return make


def test_load_run_reads_and_aligns(make_run):
    run = load_run(make_run("A"))
    assert run.name == "A" and run.competition == "pcam" and run.tta == "d4"
    assert run.folds["id"].tolist() == TRAIN_IDS
    assert run.oof.shape == (N_TRAIN, 1) and run.target.tolist() == TARGET.tolist() and run.columns == ["pred"]
    oof = pd.read_csv(run.path / "oof.csv", dtype={"id": str}).set_index("id").loc[TRAIN_IDS]
    np.testing.assert_allclose(run.oof[:, 0], oof["pred"])  # aligned to folds.csv, whatever oof.csv's order
    assert run.test_ids.tolist() == TEST_IDS and run.test.shape == (N_TEST, 1)
    assert 0.5 < run.oof_score <= 1


@pytest.mark.parametrize(
    "missing, command", [("folds.csv", "kit train"), ("oof.csv", "kit train"), ("test_pred.csv", "kit predict")]
)
def test_load_run_names_missing_file_and_command(make_run, missing, command):
    run = make_run("A", skip=(missing,))
    with pytest.raises(KitError, match=missing.replace(".", r"\.")) as err:
        load_run(run)
    assert command in str(err.value)


def test_load_run_refuses_incomplete_oof(make_run):
    oof = _noisy(2, 0, N_TRAIN, TARGET)
    oof[5] = np.nan
    with pytest.raises(KitError, match="NaN"):
        load_run(make_run("A", oof=oof))


def test_load_run_names_the_oof_file_it_read(make_run):
    run = make_run("A")
    tta = pd.read_csv(run / "oof.csv")
    tta.loc[3, "pred"] = np.nan
    tta.to_csv(run / "oof_tta.csv", index=False)
    with pytest.raises(KitError, match=r"oof_tta\.csv has NaN"):
        load_run(run)
    tta.drop(index=3).to_csv(run / "oof_tta.csv", index=False)
    with pytest.raises(KitError, match=r"oof_tta\.csv does not cover"):
        load_run(run)


def test_blend_refuses_a_run_without_env_json(make_run, tmp_path):
    run = make_run("A")  # made without env.json: no store to check the submission's ids against
    with pytest.raises(KitError, match=r"expected env\.json with the store.*Fix: rerun `kit train`"):
        blend_and_submit([run], out_dir=tmp_path / "subs", verbose=False)


def test_single_run_passthrough(make_run):
    path = make_run("A")
    run = load_run(path)
    for method in ("mean", "rank", "hill"):
        result = ensemble_runs([path], method=method)
        assert result.weights == {"A": 1.0}
        assert result.test["id"].tolist() == TEST_IDS
        np.testing.assert_allclose(result.test["pred"], run.test[:, 0])
        np.testing.assert_allclose(result.oof["pred"], run.oof[:, 0])
        assert result.oof_score == pytest.approx(run.oof_score)


def test_mean_blend(make_run):
    paths = [make_run("A", seed=1), make_run("B", seed=2)]
    a, b = load_run(paths[0]), load_run(paths[1])
    result = ensemble_runs(paths, method="mean")
    assert result.weights == {"A": 0.5, "B": 0.5}
    np.testing.assert_allclose(result.test["pred"], (a.test + b.test)[:, 0] / 2)
    np.testing.assert_allclose(result.oof["pred"], (a.oof + b.oof)[:, 0] / 2)
    assert result.oof["target"].tolist() == TARGET.tolist()
    assert result.oof_score == pytest.approx(roc_auc_score(TARGET, result.oof["pred"]))
    assert [m.oof_score for m in result.members] == pytest.approx([a.oof_score, b.oof_score])
    assert result.oof_score_in_sample == result.oof_score and result.halves == []  # nothing fitted, nothing cross-fit


def test_rank_blend_is_in_unit_interval_and_ignores_calibration(make_run, tmp_path):
    a_pred = _noisy(2, 1, N_TRAIN, TARGET)
    b_pred = _noisy(2, 2, N_TRAIN, TARGET)
    paths = [make_run("A", seed=1, oof=a_pred), make_run("B", seed=2, oof=b_pred)]
    result = ensemble_runs(paths, method="rank")
    assert result.test["pred"].between(0, 1).all() and result.oof["pred"].between(0, 1).all()
    expected = (rank_normalise(a_pred) + rank_normalise(b_pred)) / 2
    np.testing.assert_allclose(result.oof["pred"], expected)
    # a monotone recalibration of one member changes nothing
    squashed = [make_run("A", seed=1, oof=a_pred**3, parent=tmp_path / "other"), paths[1]]
    again = ensemble_runs(squashed, method="rank")
    np.testing.assert_allclose(again.oof["pred"], result.oof["pred"])


def test_hill_beats_or_equals_best_member_and_ignores_noise(make_run):
    paths = [
        make_run("good1", signal=2.0, seed=1),
        make_run("good2", signal=2.0, seed=2),
        make_run("weak", signal=0.5, seed=3),
        make_run("noise", signal=0.0, seed=4),
    ]
    result = ensemble_runs(paths, method="hill", hill_iterations=20)
    best = max(m.oof_score for m in result.members)
    assert result.oof_score_in_sample >= best  # the climb starts at the best member; the cross-fitted CV need not
    assert sum(result.weights.values()) == pytest.approx(1.0)
    assert result.weights["noise"] == 0.0
    assert result.history[0]["added"] in ("good1", "good2")
    runs = {m.name: load_run(m.path) for m in result.members}
    test = sum(w * runs[n].test[:, 0] for n, w in result.weights.items())
    np.testing.assert_allclose(result.test["pred"], test)
    assert result.oof_score == pytest.approx(roc_auc_score(TARGET, result.oof["pred"]))


def test_hill_stops_after_iterations(make_run):
    paths = [make_run("A", seed=1), make_run("B", seed=2), make_run("C", seed=3)]
    result = ensemble_runs(paths, method="hill", hill_iterations=1)
    assert len(result.history) <= 2
    assert set(result.weights.values()) <= {0.0, 0.5, 1.0}


def test_refuses_different_fold_assignment(make_run):
    paths = [make_run("A"), make_run("B", fold_seed=1)]
    for method in METHODS:
        with pytest.raises(
            KitError, match=r"expected runs A and B to share folds\.csv, got different fold assignments"
        ):
            ensemble_runs(paths, method=method)
    with pytest.raises(KitError) as err:
        ensemble_runs(paths, method="hill")
    assert (
        "cannot be blended honestly" in str(err.value) and "Fix: " in str(err.value) and "folds.seed" in str(err.value)
    )


def test_hill_cv_is_cross_fitted_over_fold_halves_and_below_the_in_sample_score(make_run, tmp_path):
    # 20 runs without signal on 48 rows: in-sample hill climbing fits noise (here 0.727), cross-fitting not (0.506).
    ids = TRAIN_IDS[:48]
    paths = [make_run(f"r{i:02d}", signal=0.0, seed=i, train_ids=ids) for i in range(20)]
    result = ensemble_runs(paths, method="hill")
    assert result.oof_score_in_sample > 0.7 and result.oof_score < result.oof_score_in_sample - 0.15, (
        result.oof_score_in_sample,
        result.oof_score,
    )
    assert result.oof_score == pytest.approx(roc_auc_score(TARGET[:48], result.oof["pred"]))  # scores the saved OOF
    folds = load_run(paths[0]).folds["fold"].to_numpy()
    assert sorted(result.halves[0]["folds"] + result.halves[1]["folds"]) == sorted(set(folds))
    for half in result.halves:  # each half's rows blended with the weights climbed on the other half
        rows = np.isin(folds, half["folds"])
        member_oof = np.stack([load_run(p).oof[rows, 0] for p in paths])
        np.testing.assert_allclose(result.oof["pred"][rows], np.array(list(half["weights"].values())) @ member_oof)
    report = format_report(result)
    assert f"{result.oof_score_in_sample:.4f}" in report and f"{result.oof_score:.4f}" in report
    weights = json.loads(write_ensemble(result, tmp_path / "blend")["weights"].read_text())
    assert weights["oof_score"] == result.oof_score and weights["oof_score_in_sample"] == result.oof_score_in_sample
    assert len(weights["halves"]) == 2


def test_hill_sidecar_records_the_cross_fitted_cv(make_run, tmp_path, monkeypatch):
    monkeypatch.setattr(ensemble.RunFolder, "store", lambda self: tmp_path / "store.h5")  # no store to read
    monkeypatch.setattr(ensemble, "expected_ids_from_store", lambda store, adapter=None: TEST_IDS)
    paths = [make_run(f"r{i}", signal=0.3, seed=i, train_ids=TRAIN_IDS[:48]) for i in range(8)]
    csv = blend_and_submit(paths, method="hill", out_dir=tmp_path / "subs", verbose=False)
    result = ensemble_runs(paths, method="hill")
    sidecar = json.loads(csv.with_suffix(".json").read_text())
    assert sidecar["cv_score"] == pytest.approx(result.oof_score) and result.oof_score < result.oof_score_in_sample
    assert sidecar["weights"] == pytest.approx(result.weights)  # the test blend's weights: climbed on every row


def test_refuses_different_train_ids(make_run):
    paths = [make_run("A"), make_run("B", train_ids=TRAIN_IDS[:-4] + ["z1", "z2", "z3", "z4"])]
    with pytest.raises(KitError, match="different train ids") as err:
        ensemble_runs(paths)
    assert "z1" in str(err.value)


def test_refuses_different_test_ids(make_run):
    paths = [make_run("A"), make_run("B", test_ids=TEST_IDS[:-1] + ["extra"])]
    with pytest.raises(KitError, match="different test ids") as err:
        ensemble_runs(paths)
    assert "extra" in str(err.value)


def test_test_order_follows_first_run(make_run):
    paths = [make_run("A", seed=1), make_run("B", seed=2, test_ids=sorted(TEST_IDS))]
    result = ensemble_runs(paths)
    assert result.test["id"].tolist() == TEST_IDS
    b = load_run(paths[1])
    b_test = b.test[b.test_ids.get_indexer(TEST_IDS)]
    np.testing.assert_allclose(result.test["pred"], (load_run(paths[0]).test + b_test)[:, 0] / 2)


def test_refuses_bad_method_and_duplicates(make_run):
    path = make_run("A")
    with pytest.raises(KitError, match="unknown ensemble method"):
        ensemble_runs([path], method="median")
    with pytest.raises(KitError, match="more than once"):
        ensemble_runs([path, path])
    with pytest.raises(KitError, match="at least one run"):
        ensemble_runs([])
    with pytest.raises(KitError, match="hill_iterations >= 1.*Fix:"):
        ensemble_runs([path], method="hill", hill_iterations=0)


def test_write_ensemble_and_report(make_run, tmp_path):
    paths = [make_run("A", seed=1), make_run("B", seed=2)]
    result = ensemble_runs(paths, method="hill")
    written = write_ensemble(result, tmp_path / "blend")
    assert set(written) == {"weights", "members", "oof", "test_pred"}
    weights = json.loads(written["weights"].read_text())
    assert weights["weights"] == result.weights and weights["method"] == "hill"
    members = pd.read_csv(written["members"])
    assert members.columns.tolist() == ["name", "path", "oof_score", "weight"] and len(members) == 2
    test = pd.read_csv(written["test_pred"], dtype={"id": str})
    assert test["id"].tolist() == TEST_IDS
    assert pd.read_csv(written["oof"]).columns.tolist() == ["id", "target", "pred"]
    report = format_report(result)
    assert "A" in report and "B" in report and f"{result.oof_score:.4f}" in report and "hill" in report


def test_average_folds():
    matrix = np.array([[0.1, 0.5, 0.9], [0.3, 0.1, 0.5]])
    np.testing.assert_allclose(average_folds(matrix), [0.2, 0.3, 0.7])
    np.testing.assert_allclose(average_folds(matrix, "rank"), [0.25, 0.25, 1.0])
    with pytest.raises(KitError, match="unknown fold average"):
        average_folds(matrix, "median")
    with pytest.raises(KitError, match="shape"):
        average_folds(np.zeros(3))


def test_incomplete_run_is_refused_with_the_partial_fix(make_run):
    run = make_run("A", skip=("oof.csv",))
    (run / "metrics.json").write_text(json.dumps({"oof_score": None, "missing_folds": [2, 3]}))
    with pytest.raises(KitError, match=r"fold\(s\) \[2, 3\] not trained.*Fix: .*kit train.*--partial") as err:
        load_run(run)
    assert f"kit ensemble {run} --partial" in str(err.value)
