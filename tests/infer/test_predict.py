import json
import shutil

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import TINY_RECIPE

from kit.cli.main import main
from kit.errors import KitError
from kit.infer.ensemble import blend_and_submit
from kit.infer.predict import predict_run, predict_tta, tta_views
from kit.infer.run_predictions import load_run
from kit.ingest.store import open_store, read_table
from kit.run import RunFolder
from kit.train.augment import D4_VIEWS


@pytest.fixture
def run(trained_run, tmp_path):
    return shutil.copytree(trained_run, tmp_path / "runs" / "pcam" / "20260101-000000_tiny")


def _images(n=5, size=12, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


class _CountingModel:
    """A position-sensitive 'model' (weights each pixel by where it is) that counts its forward passes."""

    def __init__(self, size):
        self.weights = np.random.default_rng(1).normal(size=(size, size, 3))
        self.calls = 0

    def predict_on_batch(self, x):
        self.calls += 1
        return 1 / (1 + np.exp(-(x.astype(np.float64) / 255 * self.weights).mean(axis=(1, 2, 3))))[:, None]


def test_tta_averages_the_eight_true_dihedral_views_in_one_forward_pass():
    images, model = _images(), _CountingModel(12)
    got = predict_tta(model, images, D4_VIEWS)
    assert model.calls == 1  # the 8 views went through as one batch
    views = [np.rot90(images, k, axes=(1, 2)) for k in range(4)]
    views += [v[:, :, ::-1] for v in views]  # the 8 elements of D4, computed independently of kit
    expected = np.mean([model.predict_on_batch(np.ascontiguousarray(v)).ravel() for v in views], axis=0)
    np.testing.assert_allclose(got[:, 0], expected, rtol=1e-12)
    assert not np.allclose(got, predict_tta(model, images, (0,)))  # the views really differ for this model


def test_tta_of_a_rotation_invariant_model_equals_no_tta():
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(4, 1, activation="relu")(keras.layers.Rescaling(1 / 255)(inputs))  # pointwise
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(keras.layers.GlobalAveragePooling2D()(x)))
    images = _images()
    np.testing.assert_allclose(predict_tta(model, images, D4_VIEWS), predict_tta(model, images, (0,)), atol=1e-6)


def test_predict_run_writes_fold_and_averaged_test_predictions_and_oof_with_tta(run, train_store):
    plain = (run / "oof.csv").read_bytes()
    result = predict_run(run, tta="d4", oof=True)
    with open_store(train_store) as h5:
        test_ids = read_table(h5, "test")["id"].tolist()
    pred = pd.read_csv(run / "test_pred.csv", dtype={"id": str})
    assert pred["id"].tolist() == test_ids and pred["pred"].between(0, 1).all()
    folds = [np.load(run / f"test_fold{f}.npy") for f in (0, 1)]
    np.testing.assert_allclose(pred["pred"], np.mean(folds, axis=0), rtol=1e-6)
    record = RunFolder(run).read_predict_record()
    assert record.tta == record.oof_tta == "d4" and record.folds == [0, 1]
    assert record.oof_score_tta == pytest.approx(result.oof_score_tta)
    assert (run / "oof.csv").read_bytes() == plain  # training's OOF file is not rewritten by prediction
    oof, oof_tta = pd.read_csv(run / "oof.csv"), pd.read_csv(run / "oof_tta.csv")
    assert oof[["id", "fold", "target"]].equals(oof_tta[["id", "fold", "target"]])
    assert not np.allclose(oof["pred"], oof_tta["pred"])
    assert result.oof_score_tta > 0.8

    stamp = (run / "test_fold0.npy").stat().st_mtime_ns
    predict_run(run, tta="d4", oof=True)  # done already: skipped
    assert (run / "test_fold0.npy").stat().st_mtime_ns == stamp


def test_a_fold_trained_again_makes_earlier_predictions_stale(run, train_store):
    from kit.train.loop import train

    def retrain(folds):
        return train("pcam", store=train_store, overrides=TINY_RECIPE, run_dir=run, folds=folds, verbose=0)

    predict_run(run, tta="d4", oof=True)
    stale = pd.read_csv(run / "oof_tta.csv", dtype={"id": str})
    stale.loc[stale["fold"] == 1, "pred"] = 0.5  # marks the old fold 1's rows, whatever the new model predicts
    stale.to_csv(run / "oof_tta.csv", index=False)
    shutil.rmtree(run / "fold1")
    assert not retrain("0").complete and not (run / "oof.csv").exists()  # no OOF rows of a deleted fold
    assert retrain("1").complete  # fold 1 trained again: predict.json, oof_tta.csv and test_pred.csv are stale
    with pytest.raises(KitError, match=r"fold\(s\) \[1\] were trained again.*Fix: run `kit predict .* --oof`"):
        load_run(run)  # kit ensemble does not blend the old fold's rows

    stamp = (run / "test_fold0.npy").stat().st_mtime_ns
    predict_run(run, tta="d4")  # same TTA, same folds as predict.json says, yet redone
    assert (run / "test_fold0.npy").stat().st_mtime_ns != stamp
    assert not (run / "oof_tta.csv").exists() and RunFolder(run).read_predict_record().oof_tta is None
    plain = RunFolder(run).read_oof().set_index("id")["pred"].loc[stale["id"]]
    np.testing.assert_allclose(load_run(run).oof[:, 0], plain)

    result = predict_run(run, tta="d4", oof=True)
    loaded = load_run(run)
    fresh = pd.Series(loaded.oof[:, 0], index=loaded.folds["id"])
    assert result.oof_score_tta > 0.8 and not np.isclose(fresh.loc[stale.loc[stale["fold"] == 1, "id"]], 0.5).all()
    stamp = (run / "test_fold0.npy").stat().st_mtime_ns
    predict_run(run, tta="d4", oof=True)  # up to date now: skipped
    assert (run / "test_fold0.npy").stat().st_mtime_ns == stamp


def test_an_unknown_tta_says_how_to_fix_it():
    with pytest.raises(KitError, match="expected --tta one of d4, hflip, none; got 'd8'. Fix: e.g. --tta d4"):
        tta_views("d8")


def test_predict_refuses_a_run_without_finished_folds(run):
    for f in (0, 1):
        (run / f"fold{f}" / "done.json").unlink()
    with pytest.raises(KitError, match="no finished fold"):
        predict_run(run)


def test_ensemble_writes_a_valid_submission_once(run, tmp_path, train_store, capsys):
    predict_run(run, tta="none")
    out = tmp_path / "subs"
    csv = blend_and_submit([run], out_dir=out)
    assert csv.parent == out / "pcam"
    sub = pd.read_csv(csv, dtype={"id": str})
    with open_store(train_store) as h5:
        assert sub["id"].tolist() == read_table(h5, "test")["id"].tolist()
    assert list(sub.columns) == ["id", "label"] and sub["label"].between(0, 1).all()
    assert sub["label"].nunique() > 2  # probabilities, not thresholded
    meta = json.loads(csv.with_suffix(".json").read_text())
    assert meta["runs"] == [str(run)] and meta["cv_score"] > 0.8 and meta["tta"] == ["none"]
    assert len(list((run.parent / "ensembles").iterdir())) == 1

    assert main(["ensemble", str(run), "--out-dir", str(out)]) == 0  # same runs, same values: reused
    assert "already written" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "pcam").iterdir()) == [csv.name, csv.with_suffix(".json").name]
    assert len(list((run.parent / "ensembles").iterdir())) == 1


def test_ensemble_submit_without_credentials_keeps_the_csv(run, tmp_path, monkeypatch, capsys):
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-kaggle"))
    monkeypatch.setenv("HOME", str(tmp_path))
    predict_run(run, tta="none")
    assert main(["ensemble", str(run), "--out-dir", str(tmp_path / "subs"), "--submit"]) == 0
    assert "not uploaded" in capsys.readouterr().out
    assert len(list((tmp_path / "subs" / "pcam").glob("*.csv"))) == 1


def test_a_run_trained_on_other_classes_than_its_store_holds_now_is_refused(run):
    metrics = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps({**metrics, "classes": ["1", "0"]}))  # trained before a reorder
    with pytest.raises(KitError, match=r"to hold the run's binary classes \['1', '0'\] in this order, got binary"):
        predict_run(run)


def test_rank_averaging_is_refused_where_ranks_would_be_read_as_probabilities(tmp_path):
    from kit.config import resolve_config

    assert resolve_config("pcam", overrides=["predict.fold_average=rank"]).predict.fold_average == "rank"  # AUC
    with pytest.raises(KitError, match="got micro_f1 and 'class_name' for plant-seedlings.*Fix: average"):
        resolve_config("plant-seedlings", overrides=["predict.fold_average=rank"])
