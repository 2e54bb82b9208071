import json
import shutil

import numpy as np
import pandas as pd
import pytest

from kit.errors import KitError
from kit.files import write_json
from kit.run import BlendFolder, EnvRecord, FoldDone, FoldState, PredictRecord, RunFolder, RunMetrics


def test_the_constructor_only_checks_the_path(tmp_path):
    run = RunFolder(tmp_path / "not-made-yet")
    assert not run.path.exists()  # no I/O
    assert run.fold(1).best_weights == tmp_path / "not-made-yet" / "fold1" / "best.weights.h5"
    assert RunFolder(run) == run and RunFolder(str(run.path)) == run
    for bad in ("", None, 3):
        with pytest.raises(KitError, match="expected a run folder path"):
            RunFolder(bad)


def test_every_file_round_trips(tmp_path):
    run = RunFolder(tmp_path / "run")
    run.path.mkdir()
    folds = pd.DataFrame({"id": ["a", "b", "c", "d"], "fold": [0, 1, 0, 1]})
    run.write_folds(folds)
    assert run.read_folds().equals(folds)
    run.write_oof(folds, np.array([0, 1, 1, 0]), np.array([0.1, 0.8, 0.7, 0.2]))
    assert run.read_oof()["pred"].tolist() == [0.1, 0.8, 0.7, 0.2] and run.read_oof_tta() is None
    run.write_oof_tta(run.read_oof(), np.array([0.2, 0.9, 0.6, 0.3]))
    assert run.read_oof_tta()["pred"].tolist() == [0.2, 0.9, 0.6, 0.3]
    assert run.read_oof()["pred"].tolist() == [0.1, 0.8, 0.7, 0.2]  # each file keeps its own predictions
    metrics = RunMetrics(fold_score={0: 0.9, 1: 0.8}, oof_score=0.85, missing_folds=[])
    run.write_metrics(metrics)
    assert run.read_metrics() == metrics and run.read_metrics().complete
    record = PredictRecord(tta="d4", folds=[0, 1], oof_tta="d4", oof_score_tta=0.87)
    run.write_predict_record(record)
    assert run.read_predict_record() == record
    run.fold(0).dir.mkdir()
    done = FoldDone(fold=0, best_score=0.9, best_epoch=3, epochs=4, minutes=0.5, stopped="epochs done")
    run.fold(0).write_done(done)
    assert run.fold(0).is_done() and run.fold(0).read_done() == done and not run.fold(1).is_done()
    run.fold(0).write_state(FoldState(epoch=3, step=30, best_score=0.9, best_epoch=2))
    assert run.fold(0).read_state() == FoldState(epoch=3, step=30, best_score=0.9, best_epoch=2)
    assert run.fold(1).read_state() == FoldState()  # no state.json yet: a fresh fold
    env = EnvRecord(kit_version="1.0", precision="float32", store="data/pcam/pcam.h5", versions={"keras": "3.5"})
    run.write_env(env)
    assert run.read_env() == env and str(run.store()) == "data/pcam/pcam.h5"


def test_json_files_of_other_kit_versions_read(tmp_path):
    run = RunFolder(tmp_path / "run")
    run.fold(0).dir.mkdir(parents=True)
    assert run.read_env() is None and run.store() is None
    write_json(run.env_path, {"store": "s.h5", "precision": "float32", "key_of_a_later_kit": 1})
    assert run.read_env() == EnvRecord(store="s.h5", precision="float32")
    done = {"fold": 0, "best_score": 0.9, "best_epoch": 3, "epochs": 4, "minutes": 0.5, "stopped": "epochs done"}
    write_json(run.fold(0).done, done)  # no "finished": made before it was recorded
    assert run.fold(0).read_done() == FoldDone(**done, finished=None)
    write_json(run.fold(0).state, {"epoch": 2, "step": 20, "elapsed_s": 3.0, "stopped": "time budget"})
    assert run.fold(0).read_state() == FoldState(epoch=2, step=20, elapsed_s=3.0, stopped="time budget")


def test_fold_stamps_tell_which_folds_were_trained_again(tmp_path):
    run = RunFolder(tmp_path / "run")
    for k in (0, 1):
        run.fold(k).dir.mkdir(parents=True)
        run.fold(k).write_done(FoldDone(k, 0.9, 3, 4, 0.5, "epochs done", finished=f"2026-01-01T00:00:0{k}"))
    record = PredictRecord(tta="d4", folds=[0, 1], fold_stamps=run.fold_stamps())
    assert set(record.fold_stamps) == {"0", "1"} and record.changed_folds(run.fold_stamps()) == []
    run.write_predict_record(record)
    assert run.read_predict_record() == record
    run.fold(1).write_done(FoldDone(1, 0.9, 3, 4, 0.5, "epochs done", finished="2026-01-02T00:00:00"))  # same
    assert record.changed_folds(run.fold_stamps()) == [1]  # scores, trained again later: a new stamp
    run.fold(0).done.unlink()
    assert record.changed_folds(run.fold_stamps()) == [0, 1]
    assert PredictRecord(tta="d4", folds=[0, 1]).changed_folds({}) == []  # made before stamps: taken as current


def test_history_logger_drops_the_rows_of_epochs_not_checkpointed(tmp_path):
    fold = RunFolder(tmp_path / "run").fold(0)
    fold.dir.mkdir(parents=True)
    pd.DataFrame({"epoch": [0, 1, 2], "loss": [0.7, 0.6, 0.5]}).to_csv(fold.history, index=False)
    logger = fold.history_logger(epochs=2)  # epoch 2 was logged, then killed before its checkpoint
    assert pd.read_csv(fold.history)["epoch"].tolist() == [0, 1] and logger.append
    fold.history_logger(epochs=2)
    assert len(pd.read_csv(fold.history)) == 2


def test_blend_folder_names(tmp_path):
    blend = BlendFolder.new(tmp_path / "runs" / "pcam", "hill", 2)
    assert blend.path.parent == tmp_path / "runs" / "pcam" / "ensembles" and blend.path.name.endswith("_hill_2runs")
    assert [p.name for p in (blend.weights, blend.members, blend.oof, blend.test_pred)] == [
        "weights.json",
        "members.csv",
        "oof.csv",
        "test_pred.csv",
    ]


def test_write_json_leaves_no_temporary_file(tmp_path):
    write_json(tmp_path / "a.json", {"x": np.float32(0.5)})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 0.5}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def _make_legacy(run, plain: np.ndarray, tta: np.ndarray) -> None:
    """Rewrite a finished run folder the way kit wrote it before oof_tta.csv and predict.json existed:
    `kit predict --oof` had put the TTA predictions into oof.csv's `pred` (the plain ones into `pred_plain`)
    and its keys into metrics.json."""
    oof = pd.read_csv(run / "oof.csv", dtype={"id": str})
    oof["pred"], oof["pred_plain"] = tta, plain
    oof.to_csv(run / "oof.csv", index=False)
    (run / "metrics.json").write_text(
        json.dumps(
            {
                "metric": "roc_auc",
                "folds": {"0": 0.91, "1": 0.92},
                "oof_auc": 0.9,
                "oof_tta": "d4",
                "complete": True,
                "missing_folds": [],
                "test_tta": "d4",
                "test_folds": [0, 1],
                "oof_auc_tta": 0.93,
            }
        )
    )
    for name in ("predict.json", "oof_tta.csv"):
        (run / name).unlink(missing_ok=True)


def test_a_run_folder_made_before_this_layout_still_predicts_and_ensembles(trained_run, tmp_path):
    from kit.infer.ensemble import blend_and_submit
    from kit.infer.predict import predict_run
    from kit.infer.run_predictions import load_run

    run_dir = shutil.copytree(trained_run, tmp_path / "runs" / "pcam" / "20250101-000000_legacy")
    run = RunFolder(run_dir)
    plain = run.read_oof()["pred"].to_numpy()
    tta = np.clip(plain * 0.9 + 0.05, 0, 1)
    predict_run(run_dir, tta="d4")  # test predictions, as the old `kit predict` left them
    _make_legacy(run_dir, plain, tta)

    np.testing.assert_allclose(run.read_oof()["pred"], plain)  # pred_plain is the plain column
    np.testing.assert_allclose(run.read_oof_tta()["pred"], tta)
    assert run.read_metrics() == RunMetrics(fold_score={0: 0.91, 1: 0.92}, oof_score=0.9, missing_folds=[])
    assert run.read_predict_record() == PredictRecord(tta="d4", folds=[0, 1], oof_tta="d4", oof_score_tta=0.93)

    stamp = run.test_fold_path(0).stat().st_mtime_ns
    result = predict_run(run_dir, tta="d4", oof=True)  # the old record says it is done: nothing redone
    assert run.test_fold_path(0).stat().st_mtime_ns == stamp and result.oof_score_tta == 0.93
    loaded = load_run(run_dir)
    assert loaded.tta == "d4" and np.allclose(loaded.oof[:, 0], tta)  # blends the TTA OOF, as before
    csv = blend_and_submit([run_dir], out_dir=tmp_path / "subs", verbose=False)
    assert json.loads(csv.with_suffix(".json").read_text())["tta"] == ["d4"]

    result = predict_run(run_dir, tta="d4", oof=True, force=True)  # redone: into the new files
    assert run.read_predict_record().oof_score_tta == pytest.approx(result.oof_score_tta)
    np.testing.assert_allclose(run.read_oof()["pred"], plain)
    assert not np.allclose(run.read_oof_tta()["pred"], tta)
