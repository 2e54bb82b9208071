"""kit's Kaggle layer against the real `kaggle` client and a fake Kaggle on loopback (see kaggle_server.py)."""
from __future__ import annotations

import argparse
import base64
import json
import socket
from pathlib import Path

import pandas as pd
import pytest
from kaggle_server import SLUG, TEAM, USERNAME, kaggle_env  # noqa: F401  (kaggle_env is a fixture)

from kit.errors import KitError
from kit.kaggle.client import Kaggle, KaggleApiError, find_credentials
from kit.kaggle.services import add_kaggle_verbs, download_competition, submission_message, submit_csv
from kit.kaggle.ledger import Ledger


def run_cli(argv: list[str]) -> int:
    """What kit.cli.main.main does with the Kaggle verbs: exit 2 on KitError."""
    parser = argparse.ArgumentParser(prog="kit")
    verbs = parser.add_subparsers(dest="verb", required=True)
    add_kaggle_verbs(verbs, lambda name, help, epilog: verbs.add_parser(name, help=help, epilog=epilog))
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except KitError as e:
        print(f"kit {args.verb}: error: {e}")
        return 2
    return 0


@pytest.fixture
def raw(kaggle_env, synth_pcam_master) -> Path:
    """The competition files already in place (as after `kit download`)."""
    import shutil

    return Path(shutil.copytree(synth_pcam_master, kaggle_env.root / "data" / "pcam" / "raw"))


def make_csv(raw: Path, folder: Path, name="sub", cv=0.9712, runs=("runs/pcam/20260101-000000_cnn",)) -> Path:
    ids = pd.read_csv(raw / "sample_submission.csv", dtype=str)["id"]
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / f"{name}.csv"
    pd.DataFrame({"id": ids, "label": [(k % 10) / 10 + 0.05 for k in range(len(ids))]}).to_csv(csv, index=False)
    if cv is not None:
        csv.with_suffix(".json").write_text(json.dumps({"cv_score": cv, "runs": list(runs)}))
    return csv


def api_calls(server) -> list[str]:
    return [c for c in server.calls if c != "IntrospectToken"]


# ---- credentials ----

def test_no_credentials_gives_clear_message(kaggle_env):
    kaggle_env.remove_credentials()
    with pytest.raises(KaggleApiError, match="expected Kaggle credentials.*kaggle.json.*KAGGLE_USERNAME") as info:
        find_credentials()
    assert info.value.kind == "credentials"
    assert kaggle_env.server.calls == []


def test_credentials_found_like_the_client(kaggle_env, monkeypatch):
    assert find_credentials().method == "api_key"
    assert str(kaggle_env.config) in find_credentials().source
    kaggle_env.remove_credentials()
    monkeypatch.setenv("KAGGLE_USERNAME", USERNAME)
    monkeypatch.setenv("KAGGLE_KEY", kaggle_env.key)
    assert find_credentials().source == "KAGGLE_USERNAME/KAGGLE_KEY environment variables"
    monkeypatch.setenv("KAGGLE_API_TOKEN", kaggle_env.key)
    creds = find_credentials()
    assert creds.method == "access_token" and kaggle_env.key not in repr(creds)


def test_readable_kaggle_json_warns(kaggle_env):
    kaggle_env.config.chmod(0o644)
    with pytest.warns(UserWarning, match="readable by other users.*chmod 600"):
        find_credentials()


def test_access_token_signs_in_over_loopback(kaggle_env, monkeypatch):
    kaggle_env.remove_credentials()
    monkeypatch.setenv("KAGGLE_API_TOKEN", kaggle_env.key)
    assert Kaggle().submissions(SLUG) == []
    assert "IntrospectToken" in kaggle_env.server.calls


def test_no_test_can_resolve_the_real_kaggle(kaggle_env):
    with pytest.raises(OSError, match="test guard"):
        socket.getaddrinfo("api.kaggle.com", 443)


# ---- download ----

def test_list_files_and_download(kaggle_env, capsys):
    names = {f["name"] for f in Kaggle().list_files(SLUG)}
    assert {"train_labels.csv", "sample_submission.csv"} <= names and any(n.startswith("train/") for n in names)
    assert run_cli(["download", "pcam"]) == 0
    raw = kaggle_env.root / "data" / "pcam" / "raw"
    assert (raw / ".kit-download.json").is_file() and (raw / "train_labels.csv").is_file()
    assert len(list((raw / "test").glob("*.tif"))) == 24
    assert not (raw.parent / f"{SLUG}.zip").exists()  # deleted once verified
    calls = list(kaggle_env.server.calls)
    kaggle_env.remove_credentials()  # a complete folder needs neither network nor credentials
    assert run_cli(["download", "pcam"]) == 0
    assert kaggle_env.server.calls == calls
    assert "nothing to do" in capsys.readouterr().out


def test_download_resumes_a_partial_archive(kaggle_env):
    archive = kaggle_env.server.archives[SLUG]
    folder = kaggle_env.root / "data" / "pcam"
    folder.mkdir(parents=True)
    (folder / f"{SLUG}.zip").write_bytes(archive[:1000])
    (folder / f"{SLUG}.zip.kaggle-partial").write_text(json.dumps({"validator": f'"{SLUG}-v1"',
                                                                   "size": len(archive)}))
    download_competition("pcam", kaggle=Kaggle(quiet=True), keep_zip=True, progress=False)
    assert kaggle_env.server.ranges[-1] == "bytes=1000-"
    assert (folder / f"{SLUG}.zip").read_bytes() == archive


def test_download_restarts_an_unverifiable_partial_and_resumes_unpacking(kaggle_env):
    folder = kaggle_env.root / "data" / "pcam"
    (folder / "raw" / "train").mkdir(parents=True)
    (folder / f"{SLUG}.zip").write_bytes(b"garbage from an older run")  # no resume marker: start over
    (folder / "raw" / "train_labels.csv").write_text("half-written")  # an interrupted unpack
    download_competition("pcam", kaggle=Kaggle(quiet=True), progress=False)
    assert kaggle_env.server.ranges[-1] is None
    assert (folder / "raw" / "train_labels.csv").read_text().startswith("id,label")


def test_download_retries_server_errors_and_dropped_connections(kaggle_env):
    kaggle_env.server.fail("DownloadDataFiles", 500, "drop")
    slept = []
    download_competition("pcam", kaggle=Kaggle(quiet=True, sleep=slept.append, backoff=0.5), progress=False)
    assert api_calls(kaggle_env.server).count("DownloadDataFiles") == 3 and slept == [0.5, 1.0]


def test_download_of_unknown_or_unjoined_competition_fails_clearly(kaggle_env):
    kaggle_env.server.fail("DownloadDataFiles", 404)
    assert run_cli(["download", "pcam"]) == 2
    assert api_calls(kaggle_env.server).count("DownloadDataFiles") == 1  # not retried


# ---- submit ----

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
    assert result["status"] == "already_submitted" and len(kaggle_env.server.submissions[SLUG]) == 1


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


def test_lost_create_reply_makes_no_duplicate(kaggle_env, raw):
    kaggle_env.server.fail("CreateSubmission", "lost_reply")
    csv = make_csv(raw, kaggle_env.root / "out")
    result = Kaggle(sleep=lambda s: None).submit(SLUG, csv, "once only")
    (sub,) = kaggle_env.server.submissions[SLUG]
    assert result["recovered"] and result["ref"] == sub["ref"]
    assert api_calls(kaggle_env.server).count("CreateSubmission") == 1


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


@pytest.mark.parametrize("status,kind", [(401, "credentials"), (403, "credentials"), (404, "not_found")])
def test_refusals_fail_at_once(kaggle_env, raw, status, kind):
    kaggle_env.server.fail("StartSubmissionUpload", status)
    csv = make_csv(raw, kaggle_env.root / "out")
    with pytest.raises(KaggleApiError) as info:
        Kaggle().submit(SLUG, csv, "m")
    assert info.value.kind == kind and f"HTTP {status}" in str(info.value)
    assert api_calls(kaggle_env.server).count("StartSubmissionUpload") == 1


def test_wrong_key_is_a_credentials_error(kaggle_env, raw):
    kaggle_env.config.write_text(json.dumps({"username": USERNAME, "key": "wrong"}))
    with pytest.raises(KaggleApiError, match="HTTP 401") as info:
        Kaggle().submissions(SLUG)
    assert info.value.kind == "credentials"


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


def test_429_waits_for_retry_after(kaggle_env):
    kaggle_env.server.fail("ListSubmissions", (429, {"Retry-After": "7"}), 503)
    slept = []
    assert Kaggle(sleep=slept.append, backoff=0.25).submissions(SLUG) == []
    assert slept == [7.0, 0.5]


def test_transient_failures_give_up_after_the_retries(kaggle_env):
    kaggle_env.server.fail("ListSubmissions", *[500] * 4)
    with pytest.raises(KaggleApiError, match="gave up after 4 tries"):
        Kaggle().submissions(SLUG)


def test_message_carries_cv_and_runs(tmp_path):
    csv = tmp_path / "a.csv"
    csv.with_suffix(".json").write_text(json.dumps({"cv_score": 0.9, "runs": ["runs/pcam/x_a", "runs/pcam/y_b"]}))
    assert submission_message(csv) == "CV 0.90000 | runs: x_a, y_b"
    assert submission_message(csv, "hi", plain=True) == "hi"
    assert submission_message(tmp_path / "none.csv") == "none.csv"


# ---- leaderboard ----

def test_sync_rank_table_and_plot(kaggle_env, raw, capsys):
    server = kaggle_env.server
    for k, cv in enumerate([0.95, 0.97]):
        csv = make_csv(raw, kaggle_env.root / "out", f"s{k}", cv=cv)
        assert run_cli(["submit", "pcam", str(csv), "-m", f"v{k}"]) == 0
    server.add_submission(SLUG, "by_hand.csv", "made on the website")
    server.score_all(SLUG, public=[0.940, 0.962, 0.5], private=[0.93, 0.96, 0.5])
    server.other_teams[SLUG] = [(f"team {k}", 0.99 - k * 0.01) for k in range(9)]  # 0.99 .. 0.91
    capsys.readouterr()
    assert run_cli(["leaderboard", "pcam", "--sync", "--rank"]) == 0
    out = capsys.readouterr().out
    assert "2 ledger rows updated, 1 added" in out
    assert f"{TEAM}: position 4 of 10 (top 40.0%)" in out
    frame = Ledger().rows("pcam")
    assert frame["file"].map(lambda f: Path(f).name).tolist() == ["by_hand.csv", "s1.csv", "s0.csv"]
    assert frame["status"].tolist() == ["complete"] * 3
    assert frame["public_score"].tolist() == [0.5, 0.962, 0.94] and frame["rank"].tolist()[1] == 4
    table = out[out.index("time"):]
    assert table.index("s1.csv") < table.index("s0.csv")
    plot = kaggle_env.root / "submissions" / "pcam" / "cv_vs_public.png"
    assert plot.read_bytes()[:4] == b"\x89PNG"
    assert run_cli(["leaderboard", "pcam", "--sync"]) == 0  # idempotent
    assert len(Ledger().rows("pcam")) == 3


def test_sync_reads_every_page(kaggle_env):
    for k in range(45):
        kaggle_env.server.add_submission(SLUG, f"s{k}.csv", f"m{k}", status="COMPLETE", public=k / 100)
    assert run_cli(["leaderboard", "pcam", "--sync"]) == 0
    assert sorted(Ledger().rows("pcam")["kaggle_ref"]) == sorted(s["ref"] for s in kaggle_env.server.submissions[SLUG])
    assert api_calls(kaggle_env.server).count("ListSubmissions") == 3


def test_no_credential_in_any_written_file_or_output(kaggle_env, raw, capsys, monkeypatch):
    monkeypatch.setenv("VERBOSE", "true")  # the client would print request headers if we let it
    kaggle_env.server.fail("CreateSubmission", "lost_reply")
    assert run_cli(["download", "pcam", "--force", "--keep-zip"]) == 0
    assert run_cli(["submit", "pcam", str(make_csv(raw, kaggle_env.root / "out")), "-m", "x"]) == 0
    kaggle_env.server.score_all(SLUG, public=[0.9])
    assert run_cli(["leaderboard", "pcam", "--sync", "--rank"]) == 0
    secrets = [kaggle_env.key.encode(),
               base64.b64encode(f"{USERNAME}:{kaggle_env.key}".encode())]
    captured = capsys.readouterr()
    for secret in secrets:
        assert secret.decode() not in captured.out + captured.err
    written = [p for p in kaggle_env.root.rglob("*") if p.is_file() and p != kaggle_env.config]
    assert any(p.name == "ledger.sqlite" for p in written)
    for path in written:
        data = path.read_bytes()
        assert not any(secret in data for secret in secrets), path


def test_verbs_have_help_with_examples():
    parser = argparse.ArgumentParser(prog="kit")
    verbs = parser.add_subparsers(dest="verb")
    made = {}

    def make(name, help, epilog):
        made[name] = verbs.add_parser(name, help=help, epilog=epilog)
        return made[name]

    add_kaggle_verbs(verbs, make)
    assert set(made) == {"download", "submit", "leaderboard"}
    for p in made.values():
        assert "example" in p.epilog and callable(p.get_default("run"))
