"""The whole pipeline through the real `kit` entry point under Keras' other backends: synth -> ingest -> 2-fold
train (one run with augmentation on the CPU, one with it in the model) -> predict with TTA -> ensemble.

CI installs the JAX CPU wheels and sets KIT_REQUIRE_BACKENDS=jax, so the JAX run cannot silently skip there;
torch runs where it is installed (several GB, not in CI).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

KIT = [sys.executable, "-m", "kit"]
TINY = [f"--set={key}" for key in ("model.backbone=tiny_cnn", "folds.k=2", "train.epochs=2", "train.val_every=1")]


def _require(backend: str) -> None:
    required = os.environ.get("KIT_REQUIRE_BACKENDS", "").split(",")
    try:
        __import__(backend)
    except ImportError:
        if backend in required:
            pytest.fail(f"KIT_REQUIRE_BACKENDS names {backend}, which is not installed (make install adds jax)")
        pytest.skip(f"{backend} is not installed in this venv")


def _kit(backend: str, *args: str, cwd: Path) -> str:
    env = {**os.environ, "KERAS_BACKEND": backend}
    result = subprocess.run([*KIT, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, f"kit {' '.join(args)}\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_the_two_fold_pipeline_runs_under_another_backend(backend, tmp_path):
    _require(backend)
    raw, store = tmp_path / "raw", tmp_path / "pcam.h5"
    _kit(backend, "synth", "pcam", str(raw), "--train", "160", "--test", "40", "--seed", "3", cwd=tmp_path)
    _kit(backend, "ingest", "pcam", "--raw", str(raw), "--store", str(store), "--workers", "1", cwd=tmp_path)
    for on in ("cpu", "model"):
        run = tmp_path / f"run-{on}"
        args = ["--store", str(store), "--run-dir", str(run), *TINY, f"--set=augment.on={on}"]
        _kit(backend, "train", "pcam", *args, cwd=tmp_path)
        env = json.loads((run / "env.json").read_text())
        assert env["backend"] == backend and env["device"]["kind"] == "cpu" and env["precision"] == "float32"
        metrics = json.loads((run / "metrics.json").read_text())
        assert sorted(metrics["fold_score"]) == ["0", "1"] and 0 <= metrics["oof_score"] <= 1
        assert "TTA d4" in _kit(backend, "predict", str(run), "--oof", cwd=tmp_path)
    out = _kit(backend, "ensemble", str(tmp_path / "run-cpu"), str(tmp_path / "run-model"), cwd=tmp_path)
    csv = next((tmp_path / "submissions" / "pcam").glob("*.csv"))
    submission = pd.read_csv(csv)
    assert "submission:" in out and len(submission) == 40 and submission["label"].between(0, 1).all()


@pytest.mark.slow
def test_jax_data_parallel_over_two_devices_pads_the_last_validation_batch(tmp_path):
    """Two (virtual CPU) devices: Keras' DataParallel splits every batch in two, so an odd batch size is refused
    before a run folder exists and an odd validation set's last batch is padded, its extra prediction dropped."""
    _require("jax")
    raw, store, run = tmp_path / "raw", tmp_path / "pcam.h5", tmp_path / "run"
    _kit("jax", "synth", "pcam", str(raw), "--train", "103", "--test", "10", "--seed", "4", cwd=tmp_path)
    _kit("jax", "ingest", "pcam", "--raw", str(raw), "--store", str(store), "--workers", "1", cwd=tmp_path)
    env = {**os.environ, "KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    train = [*KIT, "train", "pcam", "--store", str(store), "--run-dir", str(run), *TINY]
    odd = subprocess.run([*train, "--set=data.batch_size=15"], env=env, capture_output=True, text=True, timeout=300)
    assert odd.returncode == 2 and "divisible by the 2 devices" in odd.stderr and not run.exists(), odd.stderr[-2000:]
    done = subprocess.run([*train, "--set=data.batch_size=16"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((run / "env.json").read_text())["device"]["count"] == 2
    folds = pd.read_csv(run / "folds.csv")
    for fold in (0, 1):
        assert len(np.load(run / f"fold{fold}" / "valid_pred.npy")) == int((folds["fold"] == fold).sum())
