"""kit.kaggle.submit against the real `kaggle` client and a fake Kaggle on loopback: validate -> dedupe -> upload
-> record, and every outcome in the ledger."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from kaggle_server import SLUG, api_calls, kaggle_env, make_csv, raw, run_cli  # noqa: F401  (fixtures)

from kit.adapters.base import Adapter
from kit.errors import KitError
from kit.kaggle.ledger import Ledger
from kit.kaggle.submit import SubmitContext, SubmitResult, submission_message, submit_csv, validate_csv


def test_submit_uploads_and_records(kaggle_env, raw, capsys):
    csv = make_csv(raw, kaggle_env.root / "submissions" / "pcam")
    before = csv.read_bytes()
    assert run_cli(["submit", "pcam", str(csv), "-m", "5-fold cnn"]) == 0
    assert api_calls(kaggle_env.server)[-3:] == ["StartSubmissionUpload", "Upload", "CreateSubmission"]
    (sub,) = kaggle_env.server.submissions[SLUG]
    assert sub["data"] == before and csv.read_bytes() == before
    assert sub["description"] == "5-fold cnn | CV 0.97120 | runs: 20260101-000000_cnn"
    (row,) = Ledger().rows("pcam").to_dict("records")
    assert row["status"] == "pending" and row["kaggle_ref"] == sub["ref"] and row["cv_score"] == 0.9712
    assert json.loads(row["runs"]) == ["20260101-000000_cnn"] and row["sha256"]
    assert str(sub["ref"]) in capsys.readouterr().out
    assert run_cli(["submit", "pcam", str(csv), "--dry-run"]) == 0
    assert f"already submitted (Kaggle ref {sub['ref']}," in capsys.readouterr().err
    result = submit_csv("pcam", csv, "again", skip_if_submitted=True)  # make pcam-submit rerun: no second upload
    assert result.status == "already_submitted" and len(kaggle_env.server.submissions[SLUG]) == 1


def test_invalid_csv_is_refused_before_any_network_call(kaggle_env, raw):
    csv = make_csv(raw, kaggle_env.root / "out")
    frame = pd.read_csv(csv)
    frame.loc[3, "label"] = 1.7
    frame.to_csv(csv, index=False)
    assert run_cli(["submit", "pcam", str(csv)]) == 2
    assert kaggle_env.server.calls == [] and csv.exists()
    assert Ledger().rows("pcam")["status"].tolist() == ["invalid"]


def test_dry_run_and_ledger_work_without_credentials(kaggle_env, raw, capsys):
    kaggle_env.remove_credentials()
    csv = make_csv(raw, kaggle_env.root / "out")
    assert run_cli(["submit", "pcam", str(csv), "--dry-run"]) == 0
    assert run_cli(["leaderboard", "pcam"]) == 0
    assert kaggle_env.server.calls == []
    assert "dry_run" in capsys.readouterr().out
    assert (kaggle_env.root / "submissions" / "pcam" / "cv_vs_public.png").is_file()


def test_submit_without_credentials_fails_clearly_and_records(kaggle_env, raw, capsys):
    kaggle_env.remove_credentials()
    csv = make_csv(raw, kaggle_env.root / "out")
    assert run_cli(["submit", "pcam", str(csv)]) == 2
    assert "expected Kaggle credentials" in capsys.readouterr().out
    (row,) = Ledger().rows("pcam").to_dict("records")
    assert row["status"] == "failed" and "credentials" in row["error"] and csv.exists()


@pytest.mark.parametrize("method", ["ListSubmissions", "StartSubmissionUpload", "Upload"])
@pytest.mark.parametrize("fault", [500, 429, "drop"])
def test_transient_failures_are_retried(kaggle_env, raw, method, fault):
    kaggle_env.server.fail(method, fault)
    csv = make_csv(raw, kaggle_env.root / "out", cv=None)
    assert run_cli(["submit", "pcam", str(csv), "-m", "m"]) == 0
    (sub,) = kaggle_env.server.submissions[SLUG]
    assert sub["data"] == csv.read_bytes() and kaggle_env.server.calls.count(method) == 2
    assert Ledger().rows("pcam")["status"].tolist() == ["pending"]


def test_lost_reply_that_cannot_be_checked_is_not_retried_and_sync_heals(kaggle_env, raw):
    server = kaggle_env.server
    server.fail("CreateSubmission", "lost_reply")
    csv = make_csv(raw, kaggle_env.root / "out")
    calls = {"n": 0}
    original = server.api

    def api(method, body):  # the snapshot before the upload works; every check after the lost reply fails
        if method == "ListSubmissions":
            calls["n"] += 1
            if calls["n"] > 1:
                return 500, {"code": 500, "message": "down"}
        return original(method, body)

    server.api = api
    assert run_cli(["submit", "pcam", str(csv), "-m", "m"]) == 2
    assert len(server.submissions[SLUG]) == 1
    (row,) = Ledger().rows("pcam").to_dict("records")
    assert row["status"] == "failed" and "kit leaderboard pcam --sync" in row["error"]
    server.api = original
    assert run_cli(["leaderboard", "pcam", "--sync"]) == 0
    (row,) = Ledger().rows("pcam").to_dict("records")
    assert row["status"] == "pending" and row["kaggle_ref"] == server.submissions[SLUG][0]["ref"]


def test_failed_upload_put_is_a_failure(kaggle_env, raw):
    kaggle_env.server.fail("Upload", 403, 403, 403, 403)
    csv = make_csv(raw, kaggle_env.root / "out")
    assert run_cli(["submit", "pcam", str(csv)]) == 2
    assert kaggle_env.server.submissions[SLUG] == [] and "CreateSubmission" not in kaggle_env.server.calls
    (row,) = Ledger().rows("pcam").to_dict("records")
    assert row["status"] == "failed" and "upload" in row["error"]


def test_submission_limit_is_clear_and_not_retried(kaggle_env, raw, capsys):
    kaggle_env.server.daily_limit = 0
    csv = make_csv(raw, kaggle_env.root / "out")
    assert run_cli(["submit", "pcam", str(csv)]) == 2
    assert "submission limit" in capsys.readouterr().out
    assert api_calls(kaggle_env.server).count("CreateSubmission") == 1
    assert Ledger().rows("pcam")["status"].tolist() == ["failed"]


def test_message_carries_cv_and_runs(tmp_path):
    csv = tmp_path / "a.csv"
    csv.with_suffix(".json").write_text(json.dumps({"cv_score": 0.9, "runs": ["runs/pcam/x_a", "runs/pcam/y_b"]}))
    assert submission_message(csv) == "CV 0.90000 | runs: x_a, y_b"
    assert submission_message(csv, "hi", plain=True) == "hi"
    assert submission_message(tmp_path / "none.csv") == "none.csv"


def test_dry_run_returns_a_typed_result(kaggle_env, raw):
    csv = make_csv(raw, kaggle_env.root / "out")
    result = submit_csv("pcam", csv, "try", dry_run=True)
    assert result == SubmitResult("dry_run", result.row, None, "try | CV 0.97120 | runs: 20260101-000000_cnn")
    assert Ledger().rows("pcam")["id"].tolist() == [result.row] and kaggle_env.server.calls == []


def test_unreadable_csv_and_sidecar_are_refused(kaggle_env, raw):
    csv = make_csv(raw, kaggle_env.root / "out")
    csv.write_bytes(b"\xff\xfe\x00 not a csv")
    with pytest.raises(KitError, match="expected a readable CSV"):
        submit_csv("pcam", csv, dry_run=True)
    assert Ledger().rows("pcam")["status"].tolist() == ["invalid"]
    csv.with_suffix(".json").write_text("{not json")
    with pytest.raises(KitError, match="expected JSON in the sidecar"):
        submit_csv("pcam", csv, dry_run=True)


def test_context_names_the_raw_folder_and_the_ledger(kaggle_env, raw, tmp_path):
    moved = Path(shutil.move(raw, tmp_path / "elsewhere"))
    csv = make_csv(moved, kaggle_env.root / "out")
    with pytest.raises(KitError, match="expected the test ids"):
        submit_csv("pcam", csv, "try", dry_run=True)  # the default raw folder is gone
    other = tmp_path / "other.sqlite"
    result = submit_csv("pcam", csv, "try", dry_run=True, context=SubmitContext(raw=moved, ledger=Ledger(other)))
    assert result.status == "dry_run" and Ledger(other).rows("pcam")["id"].tolist() == [result.row]
    result = submit_csv("pcam", csv, "try", dry_run=True, context=SubmitContext(raw=moved, ledger=other))
    assert len(Ledger(other).rows("pcam")) == 2 and Ledger().rows("pcam").empty
    assert kaggle_env.server.calls == []


def _adapter(**changes) -> Adapter:
    declaration = dict(
        name="seedlings",
        slug="c/seedlings",
        train_dir="train",
        test_dir="test",
        labels_csv="train.csv",
        sample_submission_csv="sample_submission.csv",
        id_column="file",
        label_column="species",
        image_suffix="",
        image_format="png",
        image_shape=(64, 64, 3),
        metric="log_loss",
        synthesize=None,
        task="multiclass",
        classes=("Black-grass", "Charlock", "Loose Silky-bent"),
        submission="class_name",
    )
    return Adapter(**{**declaration, **changes})


def test_validate_csv_reads_each_format_as_kaggle_will(tmp_path):
    ids = ["a.png", "b.png", "c.png"]
    csv = tmp_path / "sub.csv"
    csv.write_text("file,species\na.png,Loose Silky-bent\nb.png,Charlock\nc.png,Black-grass\n")
    assert validate_csv(_adapter(), csv, ids) == (3, [])
    csv.write_text("file,species\na.png,Loose Silky-bent\nb.png,Maize\nc.png,Black-grass\n")
    with pytest.raises(KitError, match="not class names for ids 'b.png'.*'Maize'"):
        validate_csv(_adapter(), csv, ids)
    probs = _adapter(submission="class_probs", id_column="image", class_columns=("BG", "CH", "LSB"))
    csv.write_text("image,BG,CH,LSB\na.png,0.2,0.3,0.5\nb.png,0.1,0.8,0.1\nc.png,1,0,0\n")
    assert validate_csv(probs, csv, ids) == (3, [])
    csv.write_text("image,Black-grass,Charlock,Loose Silky-bent\na.png,0.2,0.3,0.5\nb.png,0.1,0.8,0.1\nc.png,1,0,0\n")
    with pytest.raises(KitError, match=r"expected submission columns \['image', 'BG', 'CH', 'LSB'\]"):
        validate_csv(probs, csv, ids)
    tags = _adapter(task="multilabel", classes=("NA", "haze", "water"), submission="labels", label_column="tags")
    csv.write_text("file,tags\na.png,NA haze\nb.png,water\nc.png,\n")  # "NA" is a name; an empty row is a warning
    rows, warnings = validate_csv(tags, csv, ids)
    assert rows == 3 and len(warnings) == 1 and "1 rows have no label (ids 'c.png'" in warnings[0]


def test_submit_wait_polls_until_scored_and_prints_public_next_to_cv(kaggle_env, raw, capsys, monkeypatch):
    monkeypatch.setenv("KIT_KAGGLE_WAIT_POLL", "0")
    kaggle_env.server.script_next(
        SLUG, {"status": "PENDING"}, {"status": "PENDING"}, {"status": "COMPLETE", "public": 0.9655}
    )
    csv = make_csv(raw, kaggle_env.root / "submissions" / "pcam")
    assert run_cli(["submit", "pcam", str(csv), "-m", "wait", "--wait"]) == 0
    out = capsys.readouterr().out
    assert "public score 0.96550  (CV 0.97120)" in out
    assert api_calls(kaggle_env.server).count("ListSubmissions") >= 3  # queued, queued, then scored
    (row,) = Ledger().rows("pcam").to_dict("records")
    assert row["status"] == "complete" and row["public_score"] == pytest.approx(0.9655)


def test_submit_wait_shows_kaggles_error_and_records_it(kaggle_env, raw, capsys, monkeypatch):
    monkeypatch.setenv("KIT_KAGGLE_WAIT_POLL", "0")
    kaggle_env.server.script_next(
        SLUG, {"status": "PENDING"}, {"status": "ERROR", "error": "Submission must have 57458 rows"}
    )
    csv = make_csv(raw, kaggle_env.root / "submissions" / "pcam")
    assert run_cli(["submit", "pcam", str(csv), "--wait"]) == 2
    out = capsys.readouterr().out
    assert "got an error: Submission must have 57458 rows. Fix: " in out
    (row,) = Ledger().rows("pcam").to_dict("records")
    assert row["status"] == "error" and row["error"] == "Submission must have 57458 rows"


def test_wait_gives_up_after_its_minutes_and_leaves_the_row_pending(kaggle_env, raw):
    from kit.kaggle.leaderboard import wait_for_score

    csv = make_csv(raw, kaggle_env.root / "out")
    ref = submit_csv("pcam", csv, "slow").ref
    ticks = iter(range(0, 10_000, 100))  # each poll advances the clock 100 s
    with pytest.raises(KitError, match=r"scored within 5 min, got status 'pending' still\. Fix: `kit leaderboard"):
        wait_for_score("pcam", ref, minutes=5, sleep=lambda s: None, clock=lambda: next(ticks))
    assert Ledger().rows("pcam")["status"].tolist() == ["pending"]
