"""The Kaggle verbs of the `kit` command (download, submit, leaderboard) and the functions behind them.

Example:
    $ kit download pcam                                   # data/pcam/raw, unpacked and verified
    $ kit submit pcam submissions/pcam/20261124-101500_cnn.csv -m "5-fold cnn"
    $ kit leaderboard pcam --sync --rank

    >>> from kit.kaggle.services import submit_csv
    >>> submit_csv("pcam", "submissions/pcam/x.csv", "first try", dry_run=True)  # doctest: +SKIP
    {'row': 1, 'status': 'dry_run', 'ref': None, 'message': 'first try | CV 0.97120 | runs: cnn'}
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import zipfile
from pathlib import Path

from kit import paths
from kit.adapters.base import get_adapter
from kit.errors import KitError

__all__ = ["add_kaggle_verbs", "download_competition", "verify_layout", "submission_message", "submit_csv",
           "sync_ledger", "our_rank", "show_leaderboard"]

_MARKER = ".kit-download.json"
_MAX_MESSAGE = 500


def _kaggle(kaggle):
    if kaggle is not None:
        return kaggle
    from kit.kaggle.client import Kaggle

    return Kaggle()


def verify_layout(adapter, raw) -> dict:
    """Check ``raw`` holds the competition's files as Kaggle ships them; returns ``{"train": n, "test": m}``.

    Raises:
        KitError: naming each missing table, folder or image (the first few and a count).
    """
    raw, counts, problems = Path(raw), {}, []
    for split in ("train", "test"):
        try:
            rows = adapter.list_split(raw, split).rows
        except KitError as e:  # a missing or unreadable table or folder
            problems.append(str(e).split(" Fix:")[0])
            continue
        missing = rows.loc[~rows["exists"], "id"].tolist()
        if missing:
            problems.append(f"{len(missing)} of {len(rows)} {split} images are missing from "
                            f"{raw / adapter.split_dir(split)} (e.g. {', '.join(missing[:3])})")
        counts[split] = len(rows)
    if problems:
        raise KitError(f"expected the Kaggle layout of {adapter.slug} in {raw}, but " + "; ".join(problems) +
                       f". Fix: rerun `kit download {adapter.name}` (it resumes; --force starts over).")
    return counts


def _unpack(archive: Path, raw: Path, progress: bool) -> None:
    """Extract file by file (each written aside, then renamed); files already extracted are skipped."""
    from tqdm.auto import tqdm

    root = raw.resolve()
    with zipfile.ZipFile(archive) as zf:
        members = [m for m in zf.infolist() if not m.is_dir()]
        made = set()
        for member in tqdm(members, desc=f"unpack {archive.name}", unit="file", disable=not progress):
            target = (raw / member.filename).resolve()
            if root not in target.parents:
                raise KitError(f"expected archive members inside {raw}, got {member.filename!r}. Fix: check the "
                               f"archive {archive}; it does not come from Kaggle as downloaded.")
            if target.is_file() and target.stat().st_size == member.file_size:
                continue
            if target.parent not in made:
                target.parent.mkdir(parents=True, exist_ok=True)
                made.add(target.parent)
            part = target.with_name(f".{target.name}.part")
            with zf.open(member) as src, open(part, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            os.replace(part, target)


def download_competition(name: str, raw=None, *, force: bool = False, keep_zip: bool = False, kaggle=None,
                         progress: bool = True) -> Path:
    """Fetch competition ``name`` into ``raw`` (default ``data/<name>/raw``), unpack, verify; skip when complete.

    The archive lands next to ``raw``; an interrupted download resumes (the client's Range requests) or restarts,
    an interrupted unpack continues where it stopped. The archive is deleted once verified unless ``keep_zip``.

    Example:
        >>> download_competition("pcam")  # doctest: +SKIP
        PosixPath('data/pcam/raw')
    """
    adapter = get_adapter(name)
    raw = Path(raw) if raw is not None else paths.default_raw(name)
    _competition_only(adapter, "download", f"Fix: `kaggle datasets download -d {adapter.slug} --unzip -p {raw}`.")
    marker = raw / _MARKER
    if not force:
        if marker.is_file() and all(adapter.table_path(raw, s).is_file() for s in ("train", "test")):
            print(f"{raw}: already downloaded and verified ({marker.name}); nothing to do (--force to fetch again)")
            return raw
        try:
            counts = verify_layout(adapter, raw)
        except KitError:
            counts = None
        if counts is not None:
            marker.write_text(json.dumps({"slug": adapter.slug, **counts}) + "\n")
            print(f"{raw}: already complete ({counts['train']} train, {counts['test']} test); nothing to download")
            return raw
    client = _kaggle(kaggle)
    archive = client.download(adapter.slug, raw.parent, force=force)
    try:
        _unpack(archive, raw, progress)
    except zipfile.BadZipFile as e:
        archive.unlink(missing_ok=True)
        raise KitError(f"expected a zip archive at {archive}, got a damaged file ({e}); it was deleted. "
                       f"Fix: rerun `kit download {name}` to fetch it again.") from e
    counts = verify_layout(adapter, raw)
    marker.write_text(json.dumps({"slug": adapter.slug, **counts}) + "\n")
    if not keep_zip:
        archive.unlink(missing_ok=True)
    print(f"downloaded {adapter.slug} to {raw}: {counts['train']} train and {counts['test']} test images verified")
    return raw


def _competition_only(adapter, what: str, fix: str) -> None:
    if adapter.kind != "competition":
        raise KitError(f"{adapter.name} is a Kaggle dataset ({adapter.slug}), not a competition: there is nothing "
                       f"to {what} through the competition API. {fix}")


def _sidecar(csv: Path) -> dict:
    path = csv.with_suffix(".json")
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError as e:
        raise KitError(f"expected JSON in the sidecar {path}, could not parse it ({e}). Fix: repair or delete it.")
    return data if isinstance(data, dict) else {}


def submission_message(csv, message: str | None = None, *, plain: bool = False) -> str:
    """The submission description: ``message`` plus the CV score and run names from the CSV's sidecar.

    Example:
        >>> submission_message("missing.csv", "try")
        'try'
    """
    csv, parts = Path(csv), [message] if message else []
    if not plain:
        meta = _sidecar(csv)
        if isinstance(meta.get("cv_score"), (int, float)):
            parts.append(f"CV {meta['cv_score']:.5f}")
        runs = meta.get("runs") or []
        if runs:
            parts.append("runs: " + ", ".join(Path(str(r)).name for r in (runs if isinstance(runs, list) else [runs])))
    text = " | ".join(parts) or csv.name
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE - 3] + "..."


def _expected_ids(adapter, raw, store) -> list[str]:
    import pandas as pd

    raw = Path(raw) if raw is not None else paths.default_raw(adapter.name)
    table = adapter.table_path(raw, "test")
    if table.is_file():
        ids = pd.read_csv(table, usecols=[adapter.id_column], dtype=str, sep=adapter.csv_sep)[adapter.id_column]
        return ids.str.strip().tolist()
    store = Path(store) if store is not None else paths.default_store(adapter.name)
    if store.is_file():
        from kit.infer.submission import expected_ids_from_store

        return expected_ids_from_store(store)
    raise KitError(f"expected the test ids in {table} or in the store {store}; found neither. Fix: pass --raw or "
                   f"--store, or run `kit download {adapter.name}` first.")


def submit_csv(name: str, csv, message: str | None = None, *, dry_run: bool = False, plain_message: bool = False,
               raw=None, store=None, ledger=None, kaggle=None, skip_if_submitted: bool = False) -> dict:
    """Validate ``csv`` (before any network call), upload it unless ``dry_run``, and record the outcome in the ledger.

    With ``skip_if_submitted``, a file whose exact bytes were already submitted is not uploaded again.

    Returns ``{"row", "status", "ref", "message"}``. The CSV is never changed; every outcome (invalid, dry_run,
    failed, pending) gets a ledger row, and failures re-raise after it is written.
    """
    import pandas as pd

    from kit.kaggle.ledger import Ledger
    from kit.infer.submission import sha256_file, validate_submission

    adapter, csv = get_adapter(name), Path(csv)
    _competition_only(adapter, "submit", f"The predictions are in {csv}.")
    if not csv.is_file():
        raise KitError(f"expected a submission CSV at {csv}, found none. Fix: pass the path `kit ensemble` printed.")
    ledger = ledger if isinstance(ledger, Ledger) else Ledger(ledger)
    meta, text = _sidecar(csv), submission_message(csv, message, plain=plain_message)
    row = {"competition": name, "file": str(csv.resolve()), "sha256": sha256_file(csv), "message": text,
           "runs": [Path(str(r)).name for r in meta.get("runs") or []] if isinstance(meta.get("runs"), list) else None,
           "cv_score": meta.get("cv_score") if isinstance(meta.get("cv_score"), (int, float)) else None}
    expected = _expected_ids(adapter, raw, store)
    try:
        frame = pd.read_csv(csv, dtype={adapter.id_column: str}, keep_default_na=False)
        warnings = validate_submission(frame, expected, adapter.id_column, adapter.label_column)
    except (KitError, ValueError, pd.errors.ParserError) as e:
        ledger.add(**row, status="invalid", error=str(e))
        raise e if isinstance(e, KitError) else KitError(f"expected a readable CSV at {csv}: {e}. Fix: rewrite it "
                                                         "with `kit ensemble`.") from e
    earlier = ledger.rows(name)
    earlier = earlier[(earlier["sha256"] == row["sha256"]) & earlier["status"].isin(["pending", "complete"])]
    if len(earlier) and skip_if_submitted:
        print(f"not uploaded again: {csv.name} is already submitted (`kit leaderboard {name}` shows it)")
        return {"row": None, "status": "already_submitted", "ref": earlier["kaggle_ref"].iloc[0], "message": text}
    if len(earlier):
        ref = earlier["kaggle_ref"].iloc[0]
        warnings.append(f"this exact file was already submitted (Kaggle ref {'?' if pd.isna(ref) else int(ref)}, "
                        f"{earlier['time'].iloc[0]}); submitting it again spends another submission.")
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if dry_run:
        row_id = ledger.add(**row, status="dry_run")
        print(f"{csv.name} is valid ({len(frame)} rows); dry run, not uploaded. Message: {text!r}")
        return {"row": row_id, "status": "dry_run", "ref": None, "message": text}
    row_id = ledger.add(**row, status="uploading")
    try:
        result = _kaggle(kaggle).submit(adapter.slug, csv, text)
    except KitError as e:
        message = str(e).replace("<competition>", name)
        ledger.update(row_id, status="failed", error=message)
        if message != str(e):
            raise KitError(message) from e
        raise
    except BaseException as e:
        ledger.update(row_id, status="failed", error=f"interrupted: {type(e).__name__}: {e}")
        raise
    ledger.update(row_id, status="pending", kaggle_ref=result["ref"])
    print(f"submitted {csv.name} to {adapter.slug} (ref {result['ref']}): {result['message']}. "
          f"`kit leaderboard {name} --sync` fetches its score.")
    return {"row": row_id, "status": "pending", "ref": result["ref"], "message": text}


def sync_ledger(name: str, *, ledger=None, kaggle=None) -> tuple[int, int]:
    """Pull our submissions' statuses and scores from Kaggle into the ledger; returns (updated, added)."""
    from kit.kaggle.ledger import Ledger

    adapter = get_adapter(name)
    ledger = ledger if isinstance(ledger, Ledger) else Ledger(ledger)
    return ledger.merge_kaggle(name, _kaggle(kaggle).submissions(adapter.slug))


def our_rank(name: str, *, ledger=None, kaggle=None) -> dict:
    """Our position on the public leaderboard: ``{"team", "rank", "teams", "percentile", "score"}``; recorded."""
    from kit.kaggle.ledger import Ledger

    adapter, client = get_adapter(name), _kaggle(kaggle)
    teams = {s["team_name"] for s in client.submissions(adapter.slug) if s.get("team_name")}
    if not teams:
        raise KitError(f"expected at least one submission to {adapter.slug} to find our team, found none. Fix: "
                       f"`kit submit {name} CSV` first.")
    board = client.leaderboard(adapter.slug)
    position = next((k for k, row in enumerate(board, 1) if row["team_name"] in teams), None)
    if position is None:
        raise KitError(f"expected our team ({', '.join(sorted(teams))}) on the public leaderboard of {adapter.slug} "
                       f"({len(board)} teams), it is not there yet. Fix: wait until a submission is scored.")
    info = {"team": board[position - 1]["team_name"], "rank": position, "teams": len(board),
            "percentile": 100.0 * position / len(board), "score": board[position - 1]["score"]}
    ledger = ledger if isinstance(ledger, Ledger) else Ledger(ledger)
    ledger.set_rank(name, position, len(board), info["score"])
    return info


def show_leaderboard(name: str, *, ledger=None, plot=None) -> Path:
    """Print the ledger (CV vs public vs private, newest first) and write the CV-vs-public plot; returns its path."""
    from kit.kaggle.ledger import Ledger, format_ledger, plot_cv_vs_public

    ledger = ledger if isinstance(ledger, Ledger) else Ledger(ledger)
    frame = ledger.rows(name)
    print(format_ledger(frame))
    return plot_cv_vs_public(frame, plot or paths.submissions_dir() / name / "cv_vs_public.png")


def _cmd_download(args) -> None:
    raw = args.raw or (Path(args.data_dir) / args.competition / "raw" if args.data_dir else None)
    download_competition(args.competition, raw, force=args.force, keep_zip=args.keep_zip)


def _cmd_submit(args) -> None:
    submit_csv(args.competition, args.csv, args.message, dry_run=args.dry_run, plain_message=args.plain_message,
               raw=args.raw, store=args.store)


def _cmd_leaderboard(args) -> None:
    if args.sync:
        updated, added = sync_ledger(args.competition)
        print(f"synced with Kaggle: {updated} ledger rows updated, {added} added")
    if args.rank:
        info = our_rank(args.competition)
        score = "" if info["score"] is None else f" with public score {info['score']:.5f}"
        print(f"{info['team']}: position {info['rank']} of {info['teams']} (top {info['percentile']:.1f}%){score}")
    plot = show_leaderboard(args.competition, plot=args.plot)
    print(f"plot: {plot}")


_EPILOG = {
    "download": "examples:\n  kit download pcam                    # -> data/pcam/raw\n"
                "  kit download pcam --data-dir /mnt/big  # -> /mnt/big/pcam/raw\n\n"
                "Needs Kaggle credentials (~/.kaggle/kaggle.json) and the competition's rules accepted. A complete\n"
                "folder is left alone; an interrupted download or unpack continues when rerun.",
    "submit": "examples:\n  kit submit pcam submissions/pcam/20261124-101500_cnn.csv -m \"5-fold cnn\"\n"
              "  kit submit pcam submissions/pcam/20261124-101500_cnn.csv --dry-run\n\n"
              "The CSV is validated first (ids, order, probabilities in [0, 1]); the message gets the CV score and\n"
              "run names from the CSV's .json sidecar unless --plain-message. Every attempt is recorded in\n"
              "submissions/ledger.sqlite, failures included.",
    "leaderboard": "examples:\n  kit leaderboard pcam                 # ledger table + CV-vs-public plot\n"
                   "  kit leaderboard pcam --sync --rank   # fetch scores and our position first",
}


def add_kaggle_verbs(verbs, make_parser) -> None:
    """Add ``download``, ``submit`` and ``leaderboard`` to the `kit` parser.

    Args:
        verbs: the argparse subparsers object.
        make_parser: ``f(name, help, epilog)`` returning a new subparser.
    """
    p = make_parser("download", "fetch the competition's files from Kaggle, unpack and verify them",
                    _EPILOG["download"])
    p.add_argument("competition")
    p.add_argument("--data-dir", help="data folder; files go to DATA_DIR/<competition>/raw (default data/)")
    p.add_argument("--raw", help="exact folder for the files (overrides --data-dir)")
    p.add_argument("--force", action="store_true", help="download again even if the folder is complete")
    p.add_argument("--keep-zip", action="store_true", help="keep the archive after unpacking")
    p.set_defaults(run=_cmd_download)

    p = make_parser("submit", "validate a submission CSV, upload it to Kaggle and record it in the ledger",
                    _EPILOG["submit"])
    p.add_argument("competition")
    p.add_argument("csv", metavar="CSV")
    p.add_argument("-m", "--message", help="submission description (CV score and runs are appended)")
    p.add_argument("--dry-run", action="store_true", help="validate and record, do not upload")
    p.add_argument("--plain-message", action="store_true", help="send MESSAGE as is, without CV score and runs")
    p.add_argument("--raw", help="folder with sample_submission.csv (default data/<competition>/raw)")
    p.add_argument("--store", help="store with the test ids, used when the raw folder is absent")
    p.set_defaults(run=_cmd_submit)

    p = make_parser("leaderboard", "print the submission ledger (CV vs public vs private) and plot CV vs public",
                    _EPILOG["leaderboard"])
    p.add_argument("competition")
    p.add_argument("--sync", action="store_true", help="first pull our submissions' statuses and scores from Kaggle")
    p.add_argument("--rank", action="store_true", help="also show our public leaderboard position and percentile")
    p.add_argument("--plot", help="PNG to write (default submissions/<competition>/cv_vs_public.png)")
    p.set_defaults(run=_cmd_leaderboard)
