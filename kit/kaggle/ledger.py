"""The submission ledger: one SQLite table recording every submission kit made (or found on Kaggle) and its scores.

File: ``submissions/ledger.sqlite`` (``kit.paths.submissions_dir()``). Table ``submissions``, one row per attempt:

==============  =======  ==========================================================================================
column          type     meaning
==============  =======  ==========================================================================================
id              INTEGER  row id (primary key)
time            TEXT     when the attempt was made (UTC, ISO 8601); Kaggle's date for rows found by ``--sync``
competition     TEXT     kit competition name (``pcam``)
file            TEXT     the CSV's path (its bare name for rows found on Kaggle)
sha256          TEXT     hex SHA-256 of the CSV bytes (NULL for rows found on Kaggle)
message         TEXT     the description sent to Kaggle
runs            TEXT     JSON list of the run names behind the CSV (from its sidecar)
cv_score        REAL     cross-validated score of the blend (from its sidecar)
status          TEXT     invalid | dry_run | uploading | failed | pending | complete | error
error           TEXT     why it failed (ours) or Kaggle's error description
kaggle_ref      INTEGER  Kaggle's submission id, once known
public_score    REAL     public leaderboard score, once scored
private_score   REAL     private leaderboard score, once revealed
rank            INTEGER  our team's public leaderboard position, on the row whose score the leaderboard counts
teams           INTEGER  teams on the public leaderboard when ``rank`` was read
updated         TEXT     last change of the row (UTC, ISO 8601)
==============  =======  ==========================================================================================

A submission blended from a run's finished folds only (``kit ensemble --partial``) is marked in ``message``
(``PARTIAL (missing folds [1], CV on 160/320 rows)``, from its sidecar's ``partial``, ``missing_folds``,
``cv_rows``, ``train_rows``) rather than in a column of its own: the mark then also reaches Kaggle's description of
the submission, and the table and every ledger written before keep their fixed column set (no migration).

No credential is ever written here. The table and plot a person reads are in ``kit.report.leaderboard``.

Example:
    >>> from kit.kaggle.ledger import Ledger
    >>> ledger = Ledger("/tmp/ledger.sqlite")  # doctest: +SKIP
    >>> row = ledger.add(competition="pcam", file="a.csv", status="dry_run", cv_score=0.97)  # doctest: +SKIP
    >>> ledger.rows("pcam")["status"].tolist()  # doctest: +SKIP
    ['dry_run']
"""

from __future__ import annotations

import datetime
import json
import sqlite3
from pathlib import Path

import pandas as pd

from kit import paths
from kit.errors import KitError

__all__ = ["Ledger", "COLUMNS", "STATUSES", "MATCH_SLACK", "default_ledger"]

COLUMNS = {
    "id": "INTEGER PRIMARY KEY AUTOINCREMENT",
    "time": "TEXT NOT NULL",
    "competition": "TEXT NOT NULL",
    "file": "TEXT",
    "sha256": "TEXT",
    "message": "TEXT",
    "runs": "TEXT",
    "cv_score": "REAL",
    "status": "TEXT NOT NULL",
    "error": "TEXT",
    "kaggle_ref": "INTEGER",
    "public_score": "REAL",
    "private_score": "REAL",
    "rank": "INTEGER",
    "teams": "INTEGER",
    "updated": "TEXT",
}
STATUSES = ("invalid", "dry_run", "uploading", "failed", "pending", "complete", "error")
_SCHEMA_VERSION = 1
# clock skew allowed when matching a Kaggle submission to our attempt (here and in `Kaggle.submit`)
MATCH_SLACK = datetime.timedelta(minutes=10)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _iso(value) -> str | None:
    """Kaggle dates are naive UTC datetimes; store them like our own times."""
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        value = value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
        return value.astimezone(datetime.UTC).isoformat(timespec="seconds")
    return str(value)


def default_ledger() -> Path:
    """``submissions/ledger.sqlite`` under ``kit.paths.submissions_dir()``."""
    return paths.submissions_dir() / "ledger.sqlite"


class Ledger:
    """The ledger file; every method opens, commits and closes its own connection (safe across processes).

    Args:
        path: SQLite file (default ``submissions/ledger.sqlite``); created with its table on first write.
    """

    def __init__(self, path=None):
        self.path = Path(path) if path is not None else default_ledger()

    @classmethod
    def open(cls, ledger=None) -> Ledger:
        """``ledger`` itself when it is a `Ledger`, else the ledger at that path (None: the default file).

        Nothing is read or created until a row is asked for or written.

        Example:
            >>> Ledger.open("/tmp/ledger.sqlite").path
            PosixPath('/tmp/ledger.sqlite')
        """
        return ledger if isinstance(ledger, cls) else cls(ledger)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(self.path, timeout=30)
            columns = ", ".join(f'"{name}" {kind}' for name, kind in COLUMNS.items())
            conn.execute(f"CREATE TABLE IF NOT EXISTS submissions ({columns})")
            conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
        except sqlite3.DatabaseError as e:
            raise KitError(
                f"expected a kit ledger (SQLite) at {self.path}, could not open it ({e}). Fix: move the "
                "file away; a new ledger is created on the next submission."
            ) from e
        return conn

    @staticmethod
    def _check(fields: dict) -> dict:
        unknown = set(fields) - set(COLUMNS) - {"id"}
        if unknown:
            raise KitError(
                f"expected ledger columns from {sorted(COLUMNS)}, got {sorted(unknown)}. Fix: pass only those "
                "names (kit.kaggle.ledger.COLUMNS)."
            )
        if "status" in fields and fields["status"] not in STATUSES:
            raise KitError(
                f"expected a ledger status in {STATUSES}, got {fields['status']!r}. Fix: pass one of those "
                "(kit.kaggle.ledger.STATUSES)."
            )
        if isinstance(fields.get("runs"), (list, tuple)):
            fields = {**fields, "runs": json.dumps([str(r) for r in fields["runs"]])}
        return fields

    def add(self, **fields) -> int:
        """Insert a row (``time`` and ``updated`` default to now); returns its id."""
        fields = self._check({"time": _now(), **fields, "updated": _now()})
        names = ", ".join(f'"{k}"' for k in fields)
        conn = self._connect()
        try:
            with conn:
                cursor = conn.execute(
                    f"INSERT INTO submissions ({names}) VALUES ({', '.join('?' * len(fields))})", list(fields.values())
                )
            return int(cursor.lastrowid)
        finally:
            conn.close()

    def update(self, row_id: int, **fields) -> None:
        """Change some columns of row ``row_id``."""
        fields = self._check({**fields, "updated": _now()})
        conn = self._connect()
        try:
            with conn:
                assignments = ", ".join(f'"{k}" = ?' for k in fields)
                conn.execute(f"UPDATE submissions SET {assignments} WHERE id = ?", [*fields.values(), row_id])
        finally:
            conn.close()

    def rows(self, competition: str | None = None) -> pd.DataFrame:
        """All rows (of one competition), newest first."""
        if not self.path.exists():
            return pd.DataFrame(columns=list(COLUMNS))
        conn = self._connect()
        try:
            where, args = ("WHERE competition = ?", [competition]) if competition else ("", [])
            return pd.read_sql_query(
                f"SELECT * FROM submissions {where} ORDER BY time DESC, id DESC", conn, params=args
            )
        finally:
            conn.close()

    def merge_kaggle(self, competition: str, submissions: list[dict]) -> tuple[int, int]:
        """Fold Kaggle's view of our submissions into the ledger; returns (rows updated, rows added).

        A submission matches the row with its ``kaggle_ref``; else an ``uploading``/``failed`` row with the same file
        name and message made within ``MATCH_SLACK`` of it (an attempt whose reply was lost); else it is added as a new
        row.
        """
        frame = self.rows(competition)
        updated = added = 0
        for s in sorted(submissions, key=lambda s: (s.get("date") is None, s.get("date"))):
            status = s.get("status") if s.get("status") in STATUSES else "pending"
            values = {
                "status": status,
                "kaggle_ref": s["ref"],
                "public_score": s.get("public_score"),
                "private_score": s.get("private_score"),
                "error": s.get("error_description") or None,
            }
            hit = frame[frame["kaggle_ref"] == s["ref"]] if s.get("ref") else frame.iloc[:0]
            if hit.empty:
                hit = self._unresolved_match(frame, s)
            if hit.empty:
                self.add(
                    competition=competition,
                    time=_iso(s.get("date")) or _now(),
                    file=s.get("file_name"),
                    message=s.get("description"),
                    **values,
                )
                added += 1
            else:
                row_id = int(hit["id"].iloc[0])
                self.update(row_id, **values)
                frame.loc[frame["id"] == row_id, "kaggle_ref"] = s["ref"]
                updated += 1
        return updated, added

    @staticmethod
    def _unresolved_match(frame: pd.DataFrame, s: dict) -> pd.DataFrame:
        open_rows = frame[frame["status"].isin(["uploading", "failed"]) & frame["kaggle_ref"].isna()]
        names = open_rows["file"].map(lambda f: Path(str(f)).name)
        hit = open_rows[(names == s.get("file_name")) & (open_rows["message"] == (s.get("description") or ""))]
        if s.get("date") is not None and not hit.empty:
            when = pd.to_datetime(hit["time"], utc=True)
            date = pd.Timestamp(_iso(s["date"]))
            hit = hit[(when <= date + MATCH_SLACK) & (when >= date - MATCH_SLACK)]
        return hit.head(1)

    def set_rank(self, competition: str, rank: int, teams: int, score: float | None) -> int | None:
        """Record our leaderboard position on the newest complete row whose public score is the leaderboard score."""
        frame = self.rows(competition)
        frame = frame[frame["status"] == "complete"]
        if score is not None:
            frame = frame[(frame["public_score"] - score).abs() < 1e-9]
        if frame.empty:
            return None
        row_id = int(frame["id"].iloc[0])
        self.update(row_id, rank=int(rank), teams=int(teams))
        return row_id
