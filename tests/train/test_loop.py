import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from conftest import TINY_RECIPE
from kit.errors import KitError
from kit.train.loop import train


def _train(store, run_dir, *extra, **kw):
    return train("pcam", store=store, overrides=TINY_RECIPE + list(extra), run_dir=run_dir, verbose=0, **kw)


def test_two_fold_run_learns_and_leaves_a_complete_run_folder(train_store, tmp_path):
    result = _train(train_store, tmp_path / "run")
    run = result.run_dir
    assert result.complete and result.oof_auc > 0.8, result
    for name in ["config.toml", "folds.csv", "env.json", "metrics.json", "oof.csv", "augment.json",
                 "learning_curves.png", "roc.png", "fold0/best.weights.h5", "fold1/history.csv", "fold1/done.json"]:
        assert (run / name).exists(), name
    oof, folds = pd.read_csv(run / "oof.csv"), pd.read_csv(run / "folds.csv")
    assert oof["id"].is_unique and set(oof["id"]) == set(folds["id"]) and oof["pred"].between(0, 1).all()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["complete"] and metrics["oof_auc"] == pytest.approx(result.oof_auc) and metrics["oof_tta"] == "none"
    env = json.loads((run / "env.json").read_text())
    assert env["precision"] == "float32" and env["device"]["kind"] == "cpu" and env["versions"]["keras"]
    history = pd.read_csv(run / "fold0" / "history.csv")
    assert len(history) == 10 and {"loss", "val_auc", "lr"} <= set(history.columns)
    assert not (run / "fold0" / "last.keras").exists()  # the resume point goes once the fold is done


def test_rerun_skips_finished_folds_and_refuses_a_different_config(train_store, tmp_path):
    first = _train(train_store, tmp_path / "run", folds="0")
    assert not first.complete and first.missing_folds == [1] and first.oof_auc is None
    weights = (first.run_dir / "fold0" / "best.weights.h5").stat().st_mtime_ns
    second = _train(train_store, tmp_path / "run", folds="1")  # e.g. the other machine's fold, merged
    assert second.complete and second.oof_auc is not None
    assert (first.run_dir / "fold0" / "best.weights.h5").stat().st_mtime_ns == weights
    with pytest.raises(KitError, match="different configuration"):
        _train(train_store, tmp_path / "run", "train.lr=0.1")
    with pytest.raises(KitError, match="fold numbers 0..1"):
        _train(train_store, tmp_path / "other", folds="0,7")


def test_time_budget_stops_cleanly_and_leaves_usable_folds(train_store, tmp_path):
    started = time.monotonic()
    result = _train(train_store, tmp_path / "run", "train.epochs=500", max_minutes=0.25)
    assert time.monotonic() - started < 60
    done = [json.loads((result.run_dir / f"fold{f}" / "done.json").read_text()) for f in (0, 1)]
    assert all(d["epochs"] < 500 and d["stopped"] in ("schedule complete", "time budget (--max-minutes) spent")
               for d in done), done
    assert result.complete  # both folds got a share of the budget


def test_seeded_cpu_runs_are_reproducible(train_store, tmp_path):
    a = _train(train_store, tmp_path / "a", "train.epochs=2", folds="0")
    b = _train(train_store, tmp_path / "b", "train.epochs=2", folds="0")
    pa, pb = (np.load(r.run_dir / "fold0" / "valid_pred.npy") for r in (a, b))
    np.testing.assert_allclose(pa, pb, atol=1e-5)


def test_killed_training_resumes_from_its_last_epoch(train_store, tmp_path):
    run = tmp_path / "run"
    args = [sys.executable, "-m", "kit", "train", "pcam", "--store", str(train_store), "--run-dir", str(run),
            "--folds", "0"] + [a for s in TINY_RECIPE + ["train.epochs=40"] for a in ("--set", s)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = run / "fold0" / "state.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (state.exists() and json.loads(state.read_text())["epoch"] >= 3):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = json.loads(state.read_text())["epoch"]
    assert 3 <= killed_at < 40 and not (run / "fold0" / "done.json").exists()
    result = _train(train_store, run, "train.epochs=40", folds="0")
    history = pd.read_csv(run / "fold0" / "history.csv")
    assert history["epoch"].tolist() == list(range(40))  # continued, not restarted: each epoch once
    assert json.loads((run / "fold0" / "done.json").read_text())["epochs"] == 40
    assert result.fold_auc[0] > 0.8
