"""kit tune: the space file's checks, a search's files, its objective's direction, resuming, the best config
reproducing its score, keras_tuner's distributed mode on loopback and the CLI verb."""

import dataclasses
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from kit.errors import KitError
from kit.tune.space import parse_space

ROOT = Path(__file__).resolve().parents[2]
BASE = [
    "model.backbone=tiny_cnn",
    "model.crop=48",
    "folds.k=2",
    "train.epochs=1",
    "data.batch_size=32",
    "data.in_memory=true",
]
SPACE = """oracle = "random"
[keys]
"train.lr" = {type = "float", min = 1e-3, max = 1e-2, sampling = "log"}
"model.dropout" = {type = "float", min = 0.0, max = 0.5, step = 0.1}
"""


def _space(keys: dict, **options) -> dict:
    return {"oracle": "random", **options, "keys": keys}


@pytest.mark.parametrize(
    "table, words",
    [
        (_space({"train.lrr": {"type": "bool"}}), ["unknown config key 'train.lrr'", "train.lr,"]),
        (_space({"trian.lr": {"type": "float", "min": 1e-4, "max": 1e-2}}), ["unknown config key 'trian'", "train,"]),
        (_space({"train": {"type": "float", "min": 1e-4, "max": 1e-2}}), ["'train' is a section"]),
        (_space({"model.backbone": {"type": "choice", "values": ["tiny_cnn", "no"]}}), ["registered backbone", "'no'"]),
        (_space({"model.dropout": {"type": "float", "min": 0.0, "max": 1.0}}), ["'model.dropout' expects", "< 1.0"]),
        (_space({"data.batch_size": {"type": "float", "min": 16, "max": 64}}), ["expects an integer"]),
        (_space({"train.lr": {"type": "floot", "min": 0.1, "max": 0.2}}), ["expected type = one of", "'floot'"]),
        (_space({"train.lr": {"type": "float", "min": 0.1}}), ["expected max = a number"]),
        (_space({"train.lr": {"type": "float", "min": 0.2, "max": 0.1}}), ["expected min < max"]),
        (_space({"train.lr": {"type": "float", "min": 0.0, "max": 0.1, "sampling": "log"}}), ["needs min > 0"]),
        (_space({"train.lr": {"type": "float", "min": 0.1, "max": 0.2, "steps": 2}}), ["unknown field 'steps'"]),
        (_space({"train.ema": {"type": "choice", "values": [0.0, "a"]}}), ["values of one type"]),
        (_space({"train.lr": 0.1}), ["expected a table for 'train.lr'"]),
        (_space({}), ["expected a [keys] table"]),
        ({"oracle": "grid", "keys": {"train.lr": {"type": "bool"}}}, ["expected oracle = one of", "'grid'"]),
        (_space({"train.lr": {"type": "choice", "values": [0.1]}}, max_epochs=3), ["belongs to the hyperband oracle"]),
        ({"oracle": "hyperband", "keys": {"train.epochs": {"type": "int", "min": 1, "max": 3}}}, ["hyperband chooses"]),
        ({"orcale": "random", "keys": {}}, ["unknown space option 'orcale'"]),
    ],
)
def test_space_errors_say_what_is_wrong(table, words):
    with pytest.raises(KitError) as e:
        parse_space(table, "space.toml")
    for word in words:
        assert word in str(e.value)
    assert "Fix:" in str(e.value) and "space.toml" in str(e.value)


def test_space_values_become_overrides():
    space = parse_space(
        _space(
            {
                "model.backbone": {"type": "choice", "values": ["tiny_cnn", "compact_cnn"]},
                "data.batch_size": {"type": "int", "min": 16, "max": 64, "step": 16},
                "train.ema": {"type": "choice", "values": [0, 0.99]},
                "data.in_memory": {"type": "bool"},
            }
        )
    )
    hp = space.hyperparameters()
    assert set(hp.values) == set(space.keys)
    values = {"model.backbone": "compact_cnn", "data.batch_size": 32, "train.ema": 0.30000000000000004}
    assert space.overrides({**values, "data.in_memory": True, "tuner/epochs": 4}) == [
        'model.backbone="compact_cnn"',
        "data.batch_size=32",
        "train.ema=0.3",
        "data.in_memory=true",
        "train.epochs=4",
    ]


def test_the_objective_follows_the_metric(monkeypatch):
    from kit.adapters.registry import get_adapter
    from kit.tune import search

    assert search.objective_for("pcam").direction == "max"  # roc_auc
    log_loss_pcam = dataclasses.replace(get_adapter("pcam"), metric="log_loss")
    monkeypatch.setattr(search, "get_adapter", lambda name: log_loss_pcam)
    objective = search.objective_for("pcam")
    assert (objective.name, objective.direction) == ("log_loss", "min")
    oracle = search.make_oracle(parse_space(_space({"data.in_memory": {"type": "bool"}})), objective, 2, None, 1)
    assert oracle.objective.direction == "min"


@pytest.fixture(scope="module")
def search(train_store, tmp_path_factory):
    """Two trials, then the same search resumed with max_trials=3."""
    from kit.tune.search import tune

    root = tmp_path_factory.mktemp("tune")
    (root / "space.toml").write_text(SPACE)
    first = tune("pcam", root / "space.toml", 2, store=train_store, overrides=BASE, search_dir=root / "s", verbose=0)
    second = tune("pcam", root / "space.toml", 3, store=train_store, overrides=BASE, search_dir=root / "s", verbose=0)
    return root, first, second


def test_a_search_writes_best_toml_and_the_trials_table(search):
    root, first, second = search
    assert first.ran == ["0", "1"] and len(first.trials) == 2
    table = pd.read_csv(root / "s" / "trials.csv", dtype={"trial": str})
    assert list(table.columns) == ["trial", "status", "train.lr", "model.dropout", "roc_auc", "run_dir"]
    assert list(table["status"]) == ["COMPLETED"] * 3
    assert table["roc_auc"].max() == pytest.approx(second.best_score)
    for run_dir in table["run_dir"]:
        assert (Path(run_dir) / "config.toml").exists() and (Path(run_dir) / "fold0").is_dir()
    best = table.loc[table["roc_auc"].idxmax()]
    assert second.best_trial == best["trial"] and second.best_values["train.lr"] == pytest.approx(best["train.lr"])
    assert f"trial {best['trial']}" in second.best_toml.read_text()


def test_resuming_runs_only_the_missing_trials(search):
    _, first, second = search
    assert second.ran == ["2"]
    assert [r["trial"] for r in second.trials] == ["0", "1", "2"]
    assert second.trials[:2] == first.trials


def test_the_best_config_reproduces_its_score(search, train_store, monkeypatch, tmp_path):
    from kit.config import resolve_config
    from kit.train.loop import train

    _, _, second = search
    cfg = resolve_config("pcam", second.best_toml)
    assert cfg.train.lr == pytest.approx(second.best_values["train.lr"]) and cfg.model.backbone == "tiny_cnn"
    monkeypatch.setenv("KIT_RUNS_DIR", str(tmp_path))
    again = train("pcam", store=train_store, config_file=second.best_toml, folds="0", verbose=0)
    assert again.run_dir.parent == tmp_path / "pcam"
    assert again.fold_score[0] == pytest.approx(second.best_score, abs=1e-6)


def test_another_search_in_the_same_folder_is_refused(search, train_store):
    from kit.tune.search import tune

    root, _, _ = search
    with pytest.raises(KitError, match="holds another search"):
        tune("pcam", root / "space.toml", 3, folds="1", store=train_store, overrides=BASE, search_dir=root / "s")


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERASTUNER_")}
    return {**env, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT), **extra}


def test_the_cli_runs_a_search(train_store, tmp_path):
    (tmp_path / "space.toml").write_text(SPACE)
    sets = [a for s in BASE for a in ("--set", s)]
    command = [sys.executable, "-m", "kit", "tune", "pcam", "--space", str(tmp_path / "space.toml")]
    done = subprocess.run(
        [*command, "--store", str(train_store), "--max-trials", "1", *sets],
        capture_output=True,
        text=True,
        env=_env(KIT_RUNS_DIR=str(tmp_path / "runs")),
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    search_dir = tmp_path / "runs" / "pcam" / "tune" / "space"
    assert "best: trial 0" in done.stdout and (search_dir / "best.toml").exists()
    assert (search_dir / "trial_0" / "fold0" / "done.json").exists()
    (tmp_path / "bad.toml").write_text('[keys]\n"train.lrr" = {type = "bool"}\n')
    bad = subprocess.run(
        [*command[:-1], str(tmp_path / "bad.toml")], capture_output=True, text=True, env=_env(), timeout=120
    )
    assert bad.returncode == 2 and "kit tune: error: unknown config key 'train.lrr'" in bad.stderr


@pytest.mark.slow
def test_a_chief_and_two_workers_share_one_search(train_store, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "space.toml").write_text(SPACE)
    sets = [a for s in BASE for a in ("--set", s)]
    command = [sys.executable, "-m", "kit", "tune", "pcam", "--space", str(tmp_path / "space.toml")]
    command += ["--store", str(train_store), "--max-trials", "3", *sets]
    procs = {
        tuner_id: subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=_env(
                KIT_RUNS_DIR=str(tmp_path / "runs"),
                KERASTUNER_TUNER_ID=tuner_id,
                KERASTUNER_ORACLE_IP="127.0.0.1",
                KERASTUNER_ORACLE_PORT=str(port),
            ),
        )
        for tuner_id in ("chief", "tuner0", "tuner1")
    }
    out = {}
    for tuner_id, proc in procs.items():
        out[tuner_id] = proc.communicate(timeout=300)[0]
        assert proc.returncode == 0, out[tuner_id]
    ran = [m for w in ("tuner0", "tuner1") for m in re.findall(r"^trial (\d+): roc_auc", out[w], re.M)]
    assert sorted(ran) == ["0", "1", "2"]  # every trial ran once, on one of the workers
    assert "worker done" in out["tuner0"] and "best: trial" in out["chief"]
    table = pd.read_csv(tmp_path / "runs" / "pcam" / "tune" / "space" / "trials.csv")
    assert list(table["status"]) == ["COMPLETED"] * 3


@pytest.mark.slow
def test_a_trial_killed_midway_is_resumed_from_its_run_folder(train_store, tmp_path):
    (tmp_path / "space.toml").write_text(SPACE)
    sets = [a for s in [*BASE, "train.epochs=8", "train.val_every=1"] for a in ("--set", s)]
    command = [sys.executable, "-m", "kit", "tune", "pcam", "--space", str(tmp_path / "space.toml")]
    command += ["--store", str(train_store), "--max-trials", "1", *sets]
    env = _env(KIT_RUNS_DIR=str(tmp_path / "runs"))
    fold = tmp_path / "runs" / "pcam" / "tune" / "space" / "trial_0" / "fold0"
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 180
    while not (fold / "last.keras").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    assert not (fold / "done.json").exists(), "the trial finished before it could be killed"
    epochs_before = json.loads((fold / "state.json").read_text())["epoch"]
    assert epochs_before >= 1
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=240)
    assert again.returncode == 0, again.stderr
    assert "trial 0:" in again.stdout and "trial 1" not in again.stdout  # the same trial, handed out again
    done = json.loads((fold / "done.json").read_text())
    assert done["epochs"] == 8
    history = pd.read_csv(fold / "history.csv")
    assert list(history["epoch"]) == list(range(8))  # continued from the resume point: no epoch twice
