"""The SQLite submission ledger: schema, rows newest first, merging Kaggle's view, rank."""

from __future__ import annotations

import datetime
import json
import sqlite3

import pandas as pd
import pytest

from kit.errors import KitError
from kit.kaggle.ledger import COLUMNS, Ledger, default_ledger


def kaggle_sub(ref, file_name="a.csv", description="m", status="complete", public=None, private=None, minutes=0):
    date = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) + datetime.timedelta(minutes=minutes)
    return {
        "ref": ref,
        "file_name": file_name,
        "date": date,
        "description": description,
        "status": status,
        "public_score": public,
        "private_score": private,
        "error_description": None,
        "team_name": "t",
    }


def test_schema_is_the_documented_one(tmp_path):
    ledger = Ledger(tmp_path / "deep" / "ledger.sqlite")
    ledger.add(competition="pcam", file="x.csv", status="dry_run")
    conn = sqlite3.connect(ledger.path)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(submissions)")]
    conn.close()
    assert columns == list(COLUMNS)
    import kit.kaggle.ledger

    assert all(f"\n{c} " in kit.kaggle.ledger.__doc__ for c in COLUMNS)  # every column is documented


def test_default_location_follows_submissions_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("KIT_SUBMISSIONS_DIR", str(tmp_path / "subs"))
    assert default_ledger() == tmp_path / "subs" / "ledger.sqlite" and Ledger().path == default_ledger()


def test_add_update_rows_newest_first(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite")
    assert ledger.rows().empty and not ledger.path.exists()
    first = ledger.add(
        competition="pcam",
        file="a.csv",
        status="uploading",
        runs=["r1", "r2"],
        cv_score=0.9,
        time="2026-01-01T00:00:00+00:00",
    )
    second = ledger.add(competition="pcam", file="b.csv", status="dry_run", time="2026-01-02T00:00:00+00:00")
    ledger.add(competition="other", file="c.csv", status="dry_run")
    ledger.update(first, status="pending", kaggle_ref=77)
    frame = ledger.rows("pcam")
    assert frame["id"].tolist() == [second, first]
    row = frame.iloc[1]
    assert row["status"] == "pending" and row["kaggle_ref"] == 77 and json.loads(row["runs"]) == ["r1", "r2"]
    assert len(ledger.rows()) == 3


def test_bad_columns_and_statuses_are_refused(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite")
    with pytest.raises(KitError, match="expected ledger columns .* Fix: "):
        ledger.add(competition="pcam", status="dry_run", password="x")
    with pytest.raises(KitError, match="expected a ledger status .* Fix: "):
        ledger.add(competition="pcam", status="great")


def test_open_takes_a_ledger_a_path_or_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("KIT_SUBMISSIONS_DIR", str(tmp_path / "subs"))
    ledger = Ledger(tmp_path / "l.sqlite")
    assert Ledger.open(ledger) is ledger
    assert Ledger.open(tmp_path / "l.sqlite").path == ledger.path == Ledger.open(str(ledger.path)).path
    assert Ledger.open().path == Ledger.open(None).path == default_ledger()
    assert not ledger.path.exists() and not default_ledger().exists()  # nothing is created by opening


def test_a_damaged_file_gives_a_clear_error(tmp_path):
    path = tmp_path / "l.sqlite"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(KitError, match="expected a kit ledger"):
        Ledger(path).rows()


def test_merge_matches_by_ref_then_by_lost_attempt_then_adds(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite")
    known = ledger.add(competition="pcam", file="/x/a.csv", message="m", status="pending", kaggle_ref=1)
    lost = ledger.add(competition="pcam", file="/x/b.csv", message="mb", status="failed", error="lost reply")
    old = ledger.add(
        competition="pcam", file="/x/c.csv", message="mc", status="failed", time="2020-01-01T00:00:00+00:00"
    )  # too old to be the Kaggle one below
    updated, added = ledger.merge_kaggle(
        "pcam",
        [
            kaggle_sub(1, public=0.91, private=0.9),
            kaggle_sub(2, "b.csv", "mb", status="pending"),
            kaggle_sub(3, "c.csv", "mc", status="error"),
        ],
    )
    assert (updated, added) == (2, 1)
    frame = ledger.rows("pcam").set_index("id")
    assert frame.loc[known, "status"] == "complete" and frame.loc[known, "public_score"] == 0.91
    assert frame.loc[lost, "kaggle_ref"] == 2 and frame.loc[lost, "status"] == "pending"
    assert frame.loc[old, "status"] == "failed" and pd.isna(frame.loc[old, "kaggle_ref"])
    assert ledger.merge_kaggle("pcam", [kaggle_sub(1, public=0.91), kaggle_sub(2), kaggle_sub(3)]) == (3, 0)


def test_rank_goes_on_the_row_the_leaderboard_counts(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite")
    ledger.merge_kaggle("pcam", [kaggle_sub(1, public=0.95, minutes=-5), kaggle_sub(2, public=0.93)])
    row = ledger.set_rank("pcam", 12, 300, 0.95)
    frame = ledger.rows("pcam").set_index("id")
    assert frame.loc[row, "kaggle_ref"] == 1 and frame.loc[row, "rank"] == 12 and frame.loc[row, "teams"] == 300
    assert ledger.set_rank("pcam", 1, 2, 0.5) is None
