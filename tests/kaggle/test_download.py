"""kit.kaggle.download against the real `kaggle` client and a fake Kaggle on loopback: fetch, resume, unpack, verify."""

from __future__ import annotations

import json

from kaggle_server import SLUG, api_calls, kaggle_env, run_cli  # noqa: F401  (kaggle_env is a fixture)

from kit.kaggle.client import Kaggle
from kit.kaggle.download import download_competition


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
    (folder / f"{SLUG}.zip.kaggle-partial").write_text(json.dumps({"validator": f'"{SLUG}-v1"', "size": len(archive)}))
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
