"""`kit ensemble --partial`: a run whose budget ran out before every fold trained is blended from its finished
folds, by the CLI and by ``kit.notebook.run`` through the same function (``blend_and_submit(partial=True)``)."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from conftest import TINY_RECIPE

from kit.cli.main import main
from kit.errors import KitError
from kit.infer import ensemble
from kit.infer.ensemble import blend_and_submit, ensemble_runs
from kit.infer.run_predictions import load_run
from kit.ingest.store import read_labels, read_table
from kit.metrics import get_metric
from kit.run import RunFolder

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def partial_master(train_store, tmp_path_factory) -> Path:
    """A two-fold run with only fold 0 trained (as when --max-minutes ran out), predicted with that fold."""
    from kit.infer.predict import predict_run
    from kit.train.loop import train

    recipe = [o for o in TINY_RECIPE if not o.startswith("train.epochs")] + ["train.epochs=2"]
    root = tmp_path_factory.mktemp("partial") / "runs" / "pcam"
    result = train("pcam", store=train_store, overrides=recipe, folds="0", run_dir=root / "run_tiny", verbose=0)
    assert not result.complete and result.missing_folds == [1]
    predict_run(result.run_dir, tta="none")
    return result.run_dir


@pytest.fixture
def partial_run(partial_master, tmp_path) -> Path:
    """A private copy (under tmp_path/runs/pcam) of the partial run."""
    return Path(shutil.copytree(partial_master, tmp_path / "runs" / "pcam" / partial_master.name))


def _finished_rows_score(run: Path, store: Path) -> tuple[float, int]:
    """The run's metric on fold 0's validation rows, computed here from the fold's own files and the store."""
    folds = RunFolder(run).read_folds()
    rows = folds["fold"].to_numpy() == 0
    with h5py.File(store, "r") as h5:
        labels = pd.Series(read_labels(h5), index=read_table(h5, "train")["id"])
    target = labels.loc[folds["id"][rows]].to_numpy()
    pred = RunFolder(run).fold(0).read_valid_pred().reshape(int(rows.sum()), -1)
    metric = get_metric(RunFolder(run).read_metrics().metric)
    return metric(target, pred), int(rows.sum())


def _env(tmp_path) -> dict:
    env = dict(os.environ, KIT_SUBMISSIONS_DIR=str(tmp_path / "subs"), KIT_RUNS_DIR=str(tmp_path / "runs"))
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


def test_without_partial_the_run_is_refused_with_the_fix_naming_partial(partial_run, capsys):
    with pytest.raises(KitError, match=r"fold\(s\) \[1\].*Fix:.*--partial"):
        load_run(partial_run)
    assert main(["ensemble", str(partial_run)]) == 2
    err = capsys.readouterr().err
    assert "Fix" in err and f"kit ensemble {partial_run} --partial" in err


def test_cli_partial_writes_a_valid_submission_marked_partial(partial_run, train_store, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "kit", "ensemble", str(partial_run), "--partial"],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    score, rows = _finished_rows_score(partial_run, train_store)
    n_train = len(RunFolder(partial_run).read_folds())
    assert "fold(s) [1] not trained" in out.stdout and f"{rows} of {n_train} train rows" in out.stdout
    csvs = sorted((tmp_path / "subs" / "pcam").glob("*.csv"))
    assert len(csvs) == 1 and csvs[0].name.endswith("-partial.csv")
    submission = pd.read_csv(csvs[0], dtype={"id": str})
    test = RunFolder(partial_run).read_test_pred()  # kit predict averaged the finished fold
    assert submission["id"].tolist() == test["id"].tolist()
    np.testing.assert_allclose(submission.iloc[:, 1], test["pred"], atol=1e-6)
    sidecar = json.loads(csvs[0].with_suffix(".json").read_text())
    assert sidecar["partial"] is True and sidecar["missing_folds"] == [1] and sidecar["cv_folds"] == [0]
    assert sidecar["cv_rows"] == rows and sidecar["train_rows"] == n_train
    assert sidecar["cv_score"] == pytest.approx(score)  # the run's metric on the finished fold's rows only
    assert f"{score:.4f}" in out.stdout

    from kit.kaggle.submit import submission_message

    message = submission_message(csvs[0], "budget ran out")
    assert "PARTIAL" in message and "missing folds [1]" in message and f"{rows}/{n_train} rows" in message


def test_partial_load_covers_only_the_finished_folds_rows(partial_run, train_store):
    run = load_run(partial_run, partial=True)
    score, rows = _finished_rows_score(partial_run, train_store)
    assert run.missing_folds == [1] and len(run.folds) == len(RunFolder(partial_run).read_folds())
    assert run.oof.shape == (rows, 1) and len(run.target) == rows and len(run.oof_ids) == rows
    assert run.oof_score == pytest.approx(score)
    result = ensemble_runs([partial_run], partial=True)
    assert result.missing_folds == [1] and result.cv_rows == rows and result.oof_score == pytest.approx(score)


def test_partial_runs_blend_only_the_rows_every_run_has(partial_run, train_store, tmp_path):
    part = load_run(partial_run, partial=True)
    every = RunFolder(partial_run).read_folds()
    with h5py.File(train_store, "r") as h5:
        labels = pd.Series(read_labels(h5), index=read_table(h5, "train")["id"]).loc[every["id"]].to_numpy()
    rng = np.random.default_rng(0)
    complete = dataclasses.replace(  # the same split with every fold trained: OOF rows for every train id
        part, name="complete", path=tmp_path / "complete", missing_folds=[], oof=rng.random((len(every), 1))
    )
    complete.target = labels
    result = ensemble_runs([part, complete], partial=True)
    assert result.oof["id"].tolist() == part.oof_ids.tolist()  # fold 0's rows: the ones both runs have
    assert result.missing_folds == [1] and result.cv_rows < result.train_rows == len(every)
    blended = (part.oof[:, 0] + complete.oof[every["fold"].to_numpy() == 0, 0]) / 2
    np.testing.assert_allclose(result.oof["pred"], blended)
    assert result.oof_score == pytest.approx(part.metric(part.target, blended))

    other = Path(shutil.copytree(partial_run, tmp_path / "runs" / "pcam" / "run_other"))
    moved = RunFolder(other).read_folds()  # swap the folds of two ids: same sizes, another split
    a, b = moved.index[moved["fold"] == 0][0], moved.index[moved["fold"] == 1][0]
    moved.loc[[a, b], "fold"] = [1, 0]
    RunFolder(other).write_folds(moved)
    with pytest.raises(KitError, match="share folds.csv"):
        ensemble_runs([partial_run, other], partial=True)


def test_notebook_uses_the_same_function_and_writes_the_same_file(partial_run, train_store, tmp_path, monkeypatch):
    import kit.infer.predict
    import kit.ingest.writer
    import kit.notebook
    import kit.train.loop

    monkeypatch.setenv("KIT_SUBMISSIONS_DIR", str(tmp_path / "subs"))
    monkeypatch.setenv("KIT_KAGGLE", "0")
    monkeypatch.chdir(tmp_path)
    cli_csv = blend_and_submit([partial_run], partial=True, verbose=False)

    class Ingested:
        def report(self):
            return "ingested"

    class Trained:
        complete, missing_folds, run_dir = False, [1], partial_run

    calls = []
    real = ensemble.blend_and_submit
    monkeypatch.setattr(kit.ingest.writer, "ingest", lambda *a, **k: Ingested())
    monkeypatch.setattr(kit.train.loop, "train", lambda *a, **k: Trained())
    monkeypatch.setattr(kit.infer.predict, "predict_run", lambda *a, **k: None)
    monkeypatch.setattr(ensemble, "blend_and_submit", lambda *a, **k: calls.append(k) or real(*a, **k))
    monkeypatch.setattr(kit.notebook.paths, "working_dir", lambda: tmp_path)
    final = kit.notebook.run("pcam", raw=tmp_path / "raw")
    assert calls and calls[0]["partial"] is True
    assert final.read_bytes() == cli_csv.read_bytes()
    assert not hasattr(kit.notebook, "_partial_submission")
