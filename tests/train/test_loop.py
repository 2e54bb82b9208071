import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_RECIPE

from kit.errors import KitError
from kit.run import FoldState, RunFolder
from kit.train.callbacks import EpochLog
from kit.train.loop import class_weights, train
from kit.train.plots import plot_run


def _train(store, run_dir, *extra, **kw):
    return train("pcam", store=store, overrides=TINY_RECIPE + list(extra), run_dir=run_dir, verbose=0, **kw)


def test_two_fold_run_learns_and_leaves_a_complete_run_folder(train_store, tmp_path):
    result = _train(train_store, tmp_path / "run")
    run = result.run_dir
    assert result.complete and result.oof_score > 0.8, result
    for name in [
        "config.toml",
        "folds.csv",
        "env.json",
        "metrics.json",
        "oof.csv",
        "augment.json",
        "learning_curves.png",
        "roc.png",
        "fold0/best.weights.h5",
        "fold1/history.csv",
        "fold1/done.json",
    ]:
        assert (run / name).exists(), name
    oof, folds = pd.read_csv(run / "oof.csv"), pd.read_csv(run / "folds.csv")
    assert oof["id"].is_unique and set(oof["id"]) == set(folds["id"]) and oof["pred"].between(0, 1).all()
    metrics = RunFolder(run).read_metrics()
    assert metrics.complete and metrics.oof_score == pytest.approx(result.oof_score)
    assert metrics.fold_score == result.fold_score
    keys = {"metric", "task", "classes", "fold_score", "oof_score", "extra", "missing_folds"}
    assert set(json.loads((run / "metrics.json").read_text())) == keys
    assert RunFolder(run).read_predict_record() is None and not (run / "oof_tta.csv").exists()  # no TTA yet
    env = json.loads((run / "env.json").read_text())
    assert env["precision"] == "float32" and env["device"]["kind"] == "cpu" and env["versions"]["keras"]
    assert env["device"]["workers"] == 1
    history = pd.read_csv(run / "fold0" / "history.csv")
    assert len(history) == 10 and {"loss", "val_score", "lr"} <= set(history.columns)
    assert not (run / "fold0" / "last.keras").exists()  # the resume point goes once the fold is done
    assert RunFolder(run).fold(1).read_done().finished  # when: a fold trained again gets a new stamp


def test_rerun_skips_finished_folds_and_refuses_a_different_config(train_store, tmp_path):
    first = _train(train_store, tmp_path / "run", folds="0")
    assert not first.complete and first.missing_folds == [1] and first.oof_score is None
    weights = (first.run_dir / "fold0" / "best.weights.h5").stat().st_mtime_ns
    second = _train(train_store, tmp_path / "run", folds="1")  # e.g. the other machine's fold, merged
    assert second.complete and second.oof_score is not None
    assert (first.run_dir / "fold0" / "best.weights.h5").stat().st_mtime_ns == weights
    with pytest.raises(KitError, match="different configuration"):
        _train(train_store, tmp_path / "run", "train.lr=0.1")
    with pytest.raises(KitError, match="fold numbers 0..1.*Fix: pass folds between 0 and 1"):
        _train(train_store, tmp_path / "other", folds="0,7")
    with pytest.raises(KitError, match="comma-separated.*Fix:"):
        _train(train_store, tmp_path / "other", folds="zero")


@pytest.mark.slow
def test_time_budget_stops_cleanly_and_leaves_usable_folds(train_store, tmp_path):
    result = _train(train_store, tmp_path / "run", "train.epochs=500", max_minutes=0.25)
    done = [json.loads((result.run_dir / f"fold{f}" / "done.json").read_text()) for f in (0, 1)]
    assert all(
        d["epochs"] < 500 and d["stopped"] in ("schedule complete", "time budget (--max-minutes) spent") for d in done
    ), done
    assert result.complete  # both folds got a share of the budget
    assert all((result.run_dir / f"fold{f}" / "best.weights.h5").exists() for f in (0, 1))  # and were checkpointed


def test_seeded_cpu_runs_are_reproducible(train_store, tmp_path):
    a = _train(train_store, tmp_path / "a", "train.epochs=2", folds="0")
    b = _train(train_store, tmp_path / "b", "train.epochs=2", folds="0")
    pa, pb = (np.load(r.run_dir / "fold0" / "valid_pred.npy") for r in (a, b))
    np.testing.assert_allclose(pa, pb, atol=1e-5)


def _kit_train_fold0(store, run, *overrides) -> list[str]:
    """`python -m kit train` of fold 0 with the tiny recipe: the command line a user would type."""
    command = [sys.executable, "-m", "kit", "train", "pcam", "--store", str(store), "--run-dir", str(run)]
    return command + ["--folds", "0"] + [a for s in TINY_RECIPE + list(overrides) for a in ("--set", s)]


@pytest.mark.slow
def test_killed_training_resumes_from_its_last_epoch(train_store, tmp_path):
    run = tmp_path / "run"
    args = _kit_train_fold0(train_store, run, "train.epochs=40")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = run / "fold0" / "state.json"
    # wait for the third checkpointed epoch however long a loaded machine takes (the cap only stops a hang)
    cap = time.monotonic() + 900
    while proc.poll() is None and not (state.exists() and json.loads(state.read_text())["epoch"] >= 3):
        assert time.monotonic() < cap, "training wrote no third epoch in 15 minutes"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = json.loads(state.read_text())["epoch"]
    assert 3 <= killed_at < 40 and not (run / "fold0" / "done.json").exists()
    result = _train(train_store, run, "train.epochs=40", folds="0")
    history = pd.read_csv(run / "fold0" / "history.csv")
    assert history["epoch"].tolist() == list(range(40))  # continued, not restarted: each epoch once
    assert json.loads((run / "fold0" / "done.json").read_text())["epochs"] == 40
    assert result.fold_score[0] > 0.8


def test_training_prints_one_line_per_epoch_with_the_budget_and_no_nan(train_store, tmp_path, capsys):
    train(
        "pcam",
        store=train_store,
        overrides=TINY_RECIPE + ["train.epochs=4", "train.val_every=2"],
        run_dir=tmp_path / "run",
        folds="0",
        max_minutes=5,
    )
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("fold 0  epoch ")]
    assert [line.split()[3] for line in lines] == ["1", "2", "3", "4"], out  # "epoch 3", not "epoch 3/4"
    assert "\b" not in out and "\r" not in out and "nan" not in out.lower()
    assert ["val roc_auc" in line for line in lines] == [False, True, False, True]  # validated every 2nd epoch
    assert all(re.search(r" of \d+\.\d min \(\d+\.\d left\)$", line) for line in lines), lines


def test_an_epoch_line_without_a_budget_counts_epochs():
    log = EpochLog(fold=1, state=FoldState(best_score=0.9), last_epoch=80, live=False)
    line = log.line(2, {"loss": 0.5, "val_score": float("nan"), "lr": 1e-3}, elapsed_s=90)
    assert line == "fold 1  epoch 3/80  loss 0.5000  lr 1.0e-03  1.5 min"
    assert "val roc_auc 0.9100 (best 0.9000)" in log.line(3, {"val_score": 0.91}, elapsed_s=90)


@pytest.mark.slow
def test_a_piped_kit_train_log_is_one_line_per_epoch_without_tensorflow_noise(train_store, tmp_path):
    args = _kit_train_fold0(train_store, tmp_path / "run", "train.epochs=2")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user's shell has it
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    for noise in ("absl::InitializeLog", "oneDNN", "cudart_stub", "cpu_feature_guard", "I0000"):
        assert noise not in done.stderr, done.stderr
    assert "\b" not in done.stdout and "nan" not in done.stdout.lower()
    assert [line.split()[3] for line in done.stdout.splitlines() if line.startswith("fold 0  epoch ")] == ["1/2", "2/2"]


def test_learning_curves_join_validation_points_across_skipped_epochs(tmp_path, monkeypatch):
    import matplotlib.axes

    run = RunFolder(tmp_path / "run")
    run.fold(0).dir.mkdir(parents=True)
    pd.DataFrame(
        {
            "epoch": [0, 1, 2, 3],
            "loss": [0.7, 0.6, 0.5, 0.4],
            "lr": [1e-3] * 4,
            "val_score": [np.nan, 0.8, np.nan, 0.9],
            "val_loss": [np.nan, 0.5, np.nan, 0.4],
        }
    ).to_csv(run.fold(0).history, index=False)
    drawn = []
    plot = matplotlib.axes.Axes.plot
    monkeypatch.setattr(
        matplotlib.axes.Axes,
        "plot",
        lambda ax, x, y, *a, **kw: drawn.append((kw.get("label"), list(x), list(y))) or plot(ax, x, y, *a, **kw),
    )
    plot_run(run, k=1)
    assert ("fold0", [2, 4], [0.8, 0.9]) in drawn and ("fold0 valid", [2, 4], [0.5, 0.4]) in drawn
    assert run.learning_curves_path.exists() and not run.roc_path.exists()  # no oof.csv yet


def test_class_weights_follow_the_setting():
    labels = np.array([0, 0, 0, 1])
    assert class_weights("none", labels) is None
    assert class_weights("balanced", labels) == {0: pytest.approx(2 / 3), 1: 2.0}
    assert class_weights(3, labels) == {0: 1.0, 1: 3.0}
    with pytest.raises(KitError, match="expected train.class_weight.*Fix: e.g. --set train.class_weight=balanced"):
        class_weights(-1, labels)


def test_a_fold_frees_its_in_memory_images_before_the_next_fold_loads(train_store, tmp_path, monkeypatch):
    import weakref

    from kit.train.loader import StoreDataset

    loaded, live_at_load = weakref.WeakSet(), []
    original = StoreDataset._load_all

    def counting(self):
        live_at_load.append(sum(1 for d in loaded if d._memory is not None))
        loaded.add(self)
        return original(self)

    monkeypatch.setattr(StoreDataset, "_load_all", counting)
    _train(train_store, tmp_path / "run", "data.in_memory=true", "train.epochs=2")
    # fold 0 loads its train then validation images (0, then 1 alive); fold 1 must find fold 0's freed
    assert live_at_load == [0, 1, 0, 1], live_at_load
