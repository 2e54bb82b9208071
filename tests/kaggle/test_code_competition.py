"""Code competitions: the adapter field, the inference-only kernel (its notebook run against a fake /kaggle tree
gives the same CSV bytes as `kit predict` + `kit ensemble`), and notebook submissions through the fake Kaggle."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from kaggle_server import SLUG, USERNAME, kaggle_env, make_csv, raw, run_cli  # noqa: F401  (fixtures)

from kit.adapters import registry
from kit.adapters.registry import get_adapter
from kit.errors import KitError
from kit.kaggle.inference_kernel import RECORD, build_inference_kernel
from kit.kaggle.ledger import Ledger
from kit.kaggle.submit import kernel_file, submit_csv, submit_kernel

KERNEL = f"{USERNAME}/kit-pcam-inference"


@pytest.fixture
def code_pcam(monkeypatch):
    """pcam declared a code competition, for this test only."""
    monkeypatch.setitem(registry._ADAPTERS, "pcam", dataclasses.replace(get_adapter("pcam"), code_competition=True))
    return get_adapter("pcam")


def test_code_competition_is_declared_only_for_competitions():
    assert get_adapter("pcam").code_competition is False
    with pytest.raises(KitError, match="code_competition only for kind 'competition'"):
        dataclasses.replace(get_adapter("chest-xray"), code_competition=True)


def test_build_refuses_a_run_without_a_finished_fold(tmp_path, trained_run):
    run = Path(shutil.copytree(trained_run, tmp_path / "run"))
    for done in run.glob("fold*/done.json"):
        done.unlink()
    with pytest.raises(KitError, match="no finished fold"):
        build_inference_kernel("pcam", run, out=tmp_path / "k", user="me")
    with pytest.raises(KitError, match="expected a run of chest-xray"):
        build_inference_kernel("chest-xray", trained_run, out=tmp_path / "k", user="me")


def _secret_free(folder: Path, key: str, home: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file() and home not in path.parents:  # home/.kaggle/kaggle.json holds it, by design
            assert key.encode() not in path.read_bytes(), path


def test_a_notebook_is_submitted_and_recorded_like_a_csv(kaggle_env, raw, code_pcam, tmp_path, monkeypatch):
    server = kaggle_env.server
    monkeypatch.chdir(tmp_path)
    build = tmp_path / "build" / "kernel"
    build.mkdir(parents=True)
    (build / RECORD).write_text(
        json.dumps({"competition": "pcam", "kernel": KERNEL, "run": "20260101-000000_cnn", "cv_score": 0.9712})
    )
    # a CSV to a code competition is refused before any network call, with the fix
    csv = make_csv(raw, tmp_path / "subs")
    with pytest.raises(KitError, match="code competition.*--kernel"):
        submit_csv("pcam", csv, "try")
    assert server.calls == []

    server.fail("CreateCodeSubmission", 503)  # transient: retried
    assert run_cli(["submit", "pcam", "--kernel", KERNEL, "--version", "3", "-m", "first notebook"]) == 0
    body = server.code_submissions[-1]
    assert (body["kernelOwner"], body["kernelSlug"], body["kernelVersion"]) == (USERNAME, "kit-pcam-inference", 3)
    assert body["fileName"] == "submission.csv" and body["competitionName"] == SLUG
    assert body["submissionDescription"] == "first notebook | CV 0.97120 | runs: 20260101-000000_cnn"
    assert server.calls.count("CreateCodeSubmission") == 2

    ledger = Ledger()
    row = ledger.rows("pcam").iloc[0]
    assert row["file"] == kernel_file(KERNEL, 3) == f"kernel:{KERNEL}@v3"
    assert (
        row["status"] == "pending" and row["cv_score"] == 0.9712 and json.loads(row["runs"]) == ["20260101-000000_cnn"]
    )
    assert int(row["kaggle_ref"]) == server.submissions[SLUG][0]["ref"] and pd_isna(row["sha256"])

    # Kaggle scores it: `kit leaderboard --sync` fills the same row
    server.score_all(SLUG, public=[0.95])
    assert run_cli(["leaderboard", "pcam", "--sync"]) == 0
    row = Ledger().rows("pcam").iloc[0]
    assert len(Ledger().rows("pcam")) == 1 and row["status"] == "complete" and row["public_score"] == 0.95

    # a record built for another kernel says nothing about this one; without a version Kaggle takes the latest
    result = submit_kernel("pcam", f"{USERNAME}/other", None, "second", inference_dir=build)
    assert result.message == "second" and "kernelVersion" not in server.code_submissions[-1]
    assert Ledger().rows("pcam").iloc[0]["file"] == f"kernel:{USERNAME}/other@latest"

    # a rejected submission is recorded as failed
    server.daily_limit = 2
    with pytest.raises(KitError, match="allowance"):
        submit_kernel("pcam", KERNEL, 4, "third", inference_dir=build)
    assert Ledger().rows("pcam").iloc[0]["status"] == "failed"
    _secret_free(tmp_path, kaggle_env.key, kaggle_env.home)


def pd_isna(value) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def test_submit_kernel_checks_the_competition_and_the_kernel(kaggle_env, code_pcam, monkeypatch):
    with pytest.raises(KitError, match="USER/SLUG"):
        submit_kernel("pcam", "no-slash", 1)
    with pytest.raises(KitError, match="--version"):
        submit_kernel("pcam", KERNEL, 0)
    monkeypatch.setitem(registry._ADAPTERS, "pcam", dataclasses.replace(code_pcam, code_competition=False))
    with pytest.raises(KitError, match="takes CSV submissions"):
        submit_kernel("pcam", KERNEL, 1)
    assert run_cli(["submit", "pcam"]) == 2  # neither a CSV nor --kernel
    assert kaggle_env.server.calls == []


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["zip", "folder"])  # as uploaded, and as Kaggle unpacks an uploaded zip
def test_the_inference_notebook_writes_the_csv_kit_predict_and_ensemble_write(
    layout, trained_run, train_store, tmp_path
):
    from kit.infer.ensemble import blend_and_submit
    from kit.infer.predict import predict_run

    run = Path(shutil.copytree(trained_run, tmp_path / "runs" / "pcam" / trained_run.name))
    predict_run(run)  # `kit predict RUN`
    local = blend_and_submit([run], out_dir=tmp_path / "submissions", verbose=False)  # `kit ensemble RUN`

    bundle = build_inference_kernel("pcam", run, out=tmp_path / "build", user="me")
    assert bundle.kernel_id == "me/kit-pcam-inference" and bundle.dataset_id == "me/kit-pcam-run"
    meta = json.loads((bundle.notebook_dir / "kernel-metadata.json").read_text())
    assert meta["enable_internet"] is False and meta["competition_sources"] == [SLUG]
    assert meta["dataset_sources"] == ["me/kit-pcam-run"] and [p.name for p in bundle.notebook_dir.glob("*.py")] == [
        meta["code_file"]
    ]
    with zipfile.ZipFile(bundle.dataset_dir / "kit_run.zip") as zf:
        names = set(zf.namelist())
    assert {"config.toml", "env.json", "folds.csv", "fold0/best.weights.h5", "fold1/best.weights.h5"} <= names
    assert not any(n.startswith("test_") for n in names)  # the test predictions are made on Kaggle

    kaggle = tmp_path / "kaggle"
    shutil.copytree(train_store.parent / "raw", kaggle / "input" / SLUG)
    attached = Path(shutil.copytree(bundle.dataset_dir, kaggle / "input" / "kit-pcam-run"))
    if layout == "folder":
        for archive in ("kit_src.zip", "kit_run.zip"):
            shutil.unpack_archive(attached / archive, attached / archive.removesuffix(".zip"))
            (attached / archive).unlink()
    (kaggle / "working").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIT_", "KAGGLE_"))}
    env |= {"KIT_KAGGLE_ROOT": str(kaggle), "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
    driver = bundle.notebook_dir / meta["code_file"]
    done = subprocess.run(
        [sys.executable, str(driver)], cwd=kaggle / "working", env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (kaggle / "working" / "submission.csv").read_bytes() == local.read_bytes()
