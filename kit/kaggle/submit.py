"""Submit a CSV to a competition in four steps: validate -> dedupe -> upload -> record (every outcome in the ledger).

The CSV is checked against the competition's test ids before any network call, compared with what the ledger says
was already submitted, uploaded through the client (`kit.kaggle.client.Kaggle.submit`, with kit's retries), and each
outcome gets a ledger row: invalid, dry_run, failed or pending. The CSV itself is never changed.

A code competition (``Adapter.code_competition``) takes no CSV: `submit_kernel` submits a notebook version's
output instead (``kit submit NAME --kernel USER/SLUG --version N``). Its ledger row uses the same columns: ``file``
is ``kernel:USER/SLUG@vN`` (``@latest`` without a version), ``sha256`` is empty (Kaggle makes the CSV), ``runs`` and
``cv_score`` come from the ``inference.json`` that ``kit kernel build --inference`` wrote (when it names that
kernel), and the status and scores follow as for a CSV (``kit leaderboard NAME --sync``).

Example:
    >>> from kit.kaggle.submit import submit_csv
    >>> submit_csv("pcam", "submissions/pcam/x.csv", "first try", dry_run=True)  # doctest: +SKIP
    SubmitResult(status='dry_run', row=1, ref=None, message='first try | CV 0.97120 | runs: cnn')
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pandas as pd

from kit import paths
from kit.adapters.registry import get_adapter
from kit.errors import KitError
from kit.infer.sidecar import Sidecar
from kit.infer.submission import (
    expected_ids_from_store,
    sha256_file,
    validate_submission,
)
from kit.infer.submission_format import SubmissionFormat
from kit.kaggle.client import Kaggle, competition_slug
from kit.kaggle.errors import KaggleApiError
from kit.kaggle.ledger import Ledger

__all__ = [
    "SubmitContext",
    "SubmitResult",
    "submit_csv",
    "submit_kernel",
    "kernel_file",
    "submission_message",
    "expected_test_ids",
    "validate_csv",
    "earlier_submissions",
    "upload",
    "MAX_MESSAGE",
]

MAX_MESSAGE = 500  # characters of a submission description kit sends


@dataclasses.dataclass(frozen=True)
class SubmitContext:
    """Where `submit_csv` finds the test ids and the ledger, and who talks to Kaggle; every field has a default.

    Attributes:
        raw: folder with the competition's test table (default ``data/<name>/raw``).
        store: store with the test ids, read when the raw folder has no test table (default: the competition's).
        ledger: a `Ledger` or its path (default ``submissions/ledger.sqlite``).
        kaggle: the client (default: a new `Kaggle`, made only when uploading).

    Example:
        >>> SubmitContext(ledger="/tmp/ledger.sqlite").kaggle is None
        True
    """

    raw: str | Path | None = None
    store: str | Path | None = None
    ledger: Ledger | str | Path | None = None
    kaggle: Kaggle | None = None


@dataclasses.dataclass(frozen=True)
class SubmitResult:
    """What `submit_csv` did.

    Attributes:
        status: ``dry_run``, ``pending`` (uploaded, waiting for its score) or ``already_submitted`` (skipped).
        row: the ledger row written (None when skipped).
        ref: Kaggle's submission id (None for a dry run; the earlier one's, when known, for a skipped file).
        message: the description sent, or that would have been sent.

    Example:
        >>> SubmitResult("dry_run", 1, None, "try").status
        'dry_run'
    """

    status: str
    row: int | None
    ref: int | None
    message: str


def _describe(sidecar: Sidecar, message: str | None, plain: bool, fallback: str) -> str:
    parts = [message] if message else []
    if not plain:
        if sidecar.extra.get("partial"):  # `kit ensemble --partial`: the ledger has no column for it (see ledger.py)
            rows = sidecar.extra.get("cv_rows"), sidecar.extra.get("train_rows")
            covered = f", CV on {rows[0]}/{rows[1]} rows" if None not in rows else ""
            parts.append(f"PARTIAL (missing folds {sidecar.extra.get('missing_folds', '?')}{covered})")
        if sidecar.cv_score is not None:
            parts.append(f"CV {sidecar.cv_score:.5f}")
        if sidecar.run_names:
            parts.append("runs: " + ", ".join(sidecar.run_names))
    text = " | ".join(parts) or fallback
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def submission_message(csv, message: str | None = None, *, plain: bool = False) -> str:
    """The submission description: ``message`` plus the CV score and run names from the CSV's sidecar (and, for a
    ``kit ensemble --partial`` blend, ``PARTIAL`` with the missing folds and the rows the CV covers).

    Example:
        >>> submission_message("missing.csv", "try")
        'try'
    """
    csv = Path(csv)
    return _describe(Sidecar() if plain else Sidecar.read(csv), message, plain, csv.name)


def expected_test_ids(adapter, raw=None, store=None) -> list[str]:
    """The test ids in submission order: from the raw folder's test table, else from the store.

    Example:
        >>> expected_test_ids(get_adapter("pcam"))[:2]  # doctest: +SKIP
        ['0b2ea2a822ad23fdb1b5dd26653da899fbd2c0d5', '95596b92e5066c5c52466c90b69ff089b39f2737']
    """
    raw = Path(raw) if raw is not None else paths.default_raw(adapter.name)
    table = adapter.table_path(raw, "test")
    if table.is_file():
        ids = pd.read_csv(table, usecols=[adapter.id_column], dtype=str, sep=adapter.csv_sep)[adapter.id_column]
        return ids.str.strip().tolist()
    store = Path(store) if store is not None else paths.default_store(adapter.name)
    if store.is_file():
        return expected_ids_from_store(store, adapter)
    raise KitError(
        f"expected the test ids in {table} or in the store {store}; found neither. Fix: pass --raw or "
        f"--store, or run `kit download {adapter.name}` first."
    )


def validate_csv(adapter, csv, expected_ids) -> tuple[int, list[str]]:
    """Step 1: read ``csv`` as Kaggle will and check it against the adapter's `SubmissionFormat`; returns
    (rows, warnings).

    Raises:
        KitError: naming what is wrong (columns, ids, order, values) or why the file cannot be read.

    Example:
        >>> validate_csv(get_adapter("pcam"), "submissions/pcam/x.csv", ids)  # doctest: +SKIP
        (57458, [])
    """
    fmt = SubmissionFormat.from_adapter(adapter)
    try:
        frame = fmt.read(csv)
    except (ValueError, pd.errors.ParserError) as e:  # ParserError is a ValueError; named for the reader
        raise KitError(f"expected a readable CSV at {csv}: {e}. Fix: rewrite it with `kit ensemble`.") from e
    return len(frame), validate_submission(frame, expected_ids, fmt)


def earlier_submissions(ledger: Ledger, name: str, sha256: str) -> pd.DataFrame:
    """Step 2: ledger rows (newest first) where these exact bytes were submitted (pending or complete).

    Example:
        >>> earlier_submissions(Ledger(), "pcam", sha256_file("x.csv")).empty  # doctest: +SKIP
        True
    """
    rows = ledger.rows(name)
    return rows[(rows["sha256"] == sha256) & rows["status"].isin(["pending", "complete"])]


def _ref(value) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def upload(name: str, csv, description: str, kaggle: Kaggle | None = None) -> dict:
    """Step 3: upload ``csv`` to competition ``name``; returns the client's ``{"ref", "message", "recovered"}``.

    Raises:
        KaggleApiError: as `Kaggle.submit`; when a lost reply could not be checked, the fix names the verb that
            finds out (`kit leaderboard NAME --sync`).

    Example:
        >>> upload("pcam", "submissions/pcam/x.csv", "first try")["ref"]  # doctest: +SKIP
        40111222
    """
    csv, slug = Path(csv), get_adapter(name).slug
    try:
        return (kaggle or Kaggle()).submit(slug, csv, description)
    except KaggleApiError as e:
        if e.kind != "unconfirmed":
            raise
        raise KaggleApiError(
            f"expected Kaggle to confirm the submission of {csv.name} to {slug}, but the reply was "
            f"lost and listing our submissions failed too (HTTP {e.status or 'no answer'}), so it "
            f"may have been created. Fix: run `kit leaderboard {name} --sync` (it records the "
            "submission if Kaggle has it) before submitting again, to avoid a duplicate.",
            "unconfirmed",
            e.status,
        ) from e


def _send_recorded(ledger: Ledger, row: int, send) -> dict:
    """``send()`` with the ledger row ``uploading`` -> ``pending`` (with Kaggle's ref), or ``failed`` with why;
    the row never stays ``uploading``, whatever stops the call."""
    try:
        sent = send()
    except KitError as e:
        ledger.update(row, status="failed", error=str(e))
        raise
    except BaseException as e:  # Ctrl-C or a bug
        ledger.update(row, status="failed", error=f"interrupted: {type(e).__name__}: {e}")
        raise
    ledger.update(row, status="pending", kaggle_ref=sent["ref"])
    return sent


def submit_csv(
    name: str,
    csv,
    message: str | None = None,
    *,
    dry_run: bool = False,
    plain_message: bool = False,
    skip_if_submitted: bool = False,
    context: SubmitContext | None = None,
) -> SubmitResult:
    """Validate ``csv``, skip or warn about a resubmission, upload it unless ``dry_run``, record the outcome.

    Args:
        name: kit competition name.
        csv: the submission file (its ``.json`` sidecar, if any, gives the CV score and runs).
        message: description; the CV score and run names are appended unless ``plain_message``.
        dry_run: validate and record, do not upload.
        plain_message: send ``message`` as is.
        skip_if_submitted: do nothing when these exact bytes were already submitted.
        context: where the test ids and the ledger are, and the client (default: `SubmitContext()`).

    Raises:
        KitError: an invalid CSV (recorded ``invalid``) or a failed upload (recorded ``failed``).

    Example:
        >>> submit_csv("pcam", "submissions/pcam/x.csv", "5-fold cnn").status  # doctest: +SKIP
        'pending'
    """
    adapter, csv = get_adapter(name), Path(csv)
    slug = competition_slug(adapter, "submit", f"The predictions are in {csv}.")
    if adapter.code_competition:
        raise KitError(
            f"{name} ({slug}) is a code competition: Kaggle scores a notebook's output, not an uploaded CSV "
            f"({csv}). Fix: `kit kernel build {name} --inference RUN_DIR`, `kit kernel push`, then "
            f"`kit submit {name} --kernel USER/SLUG --version N`."
        )
    if not csv.is_file():
        raise KitError(f"expected a submission CSV at {csv}, found none. Fix: pass the path `kit ensemble` printed.")
    context = context or SubmitContext()
    ledger = Ledger.open(context.ledger)
    sidecar = Sidecar.read(csv)
    text = _describe(sidecar, message, plain_message, csv.name)
    record = {
        "competition": name,
        "file": str(csv.resolve()),
        "sha256": sha256_file(csv),
        "message": text,
        "runs": list(sidecar.run_names) if sidecar.runs is not None else None,
        "cv_score": sidecar.cv_score,
    }

    expected = expected_test_ids(adapter, context.raw, context.store)
    try:
        rows, warnings = validate_csv(adapter, csv, expected)
    except KitError as e:
        ledger.add(**record, status="invalid", error=str(e))
        raise

    earlier = earlier_submissions(ledger, name, record["sha256"])
    if len(earlier) and skip_if_submitted:
        print(f"not uploaded again: {csv.name} is already submitted (`kit leaderboard {name}` shows it)")
        return SubmitResult("already_submitted", None, _ref(earlier["kaggle_ref"].iloc[0]), text)
    if len(earlier):
        ref = _ref(earlier["kaggle_ref"].iloc[0])
        warnings.append(
            f"this exact file was already submitted (Kaggle ref {'?' if ref is None else ref}, "
            f"{earlier['time'].iloc[0]}); submitting it again spends another submission."
        )
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)

    if dry_run:
        row = ledger.add(**record, status="dry_run")
        print(f"{csv.name} is valid ({rows} rows); dry run, not uploaded. Message: {text!r}")
        return SubmitResult("dry_run", row, None, text)
    row = ledger.add(**record, status="uploading")
    sent = _send_recorded(ledger, row, lambda: upload(name, csv, text, context.kaggle))
    print(
        f"submitted {csv.name} to {slug} (ref {sent['ref']}): {sent['message']}. "
        f"`kit leaderboard {name} --sync` fetches its score."
    )
    return SubmitResult("pending", row, sent["ref"], text)


def kernel_file(kernel: str, version: int | None) -> str:
    """The ledger's ``file`` of a notebook submission.

    Example:
        >>> kernel_file("me/kit-pcam-inference", 3)
        'kernel:me/kit-pcam-inference@v3'
    """
    return f"kernel:{kernel}@" + (f"v{version}" if version is not None else "latest")


def _check_kernel(kernel: str, version: int | None) -> None:
    owner, _, slug = str(kernel).partition("/")
    if not owner or not slug or "/" in slug:
        raise KitError(
            f"expected --kernel as USER/SLUG (the notebook's id), got {kernel!r}. Fix: e.g. "
            "--kernel me/kit-pcam-inference (`kit kernel push` prints it)."
        )
    if version is not None and (isinstance(version, bool) or int(version) < 1):
        raise KitError(f"expected --version a notebook version >= 1, got {version!r}. Fix: e.g. --version 1.")


def submit_kernel(
    name: str,
    kernel: str,
    version: int | None = None,
    message: str | None = None,
    *,
    file_name: str = "submission.csv",
    plain_message: bool = False,
    inference_dir="build/kernel",
    ledger: Ledger | str | Path | None = None,
    kaggle: Kaggle | None = None,
) -> SubmitResult:
    """Submit the output ``file_name`` of notebook ``kernel`` (``USER/SLUG``) version ``version`` (None: the
    latest) to the code competition ``name``; record it in the ledger (see the module docstring).

    Args:
        message: description; the run and CV from ``inference_dir/inference.json`` are appended (when it was built
            for this kernel) unless ``plain_message``.
        inference_dir: where `kit kernel build --inference` wrote the kernel (its record gives runs and CV).

    Raises:
        KitError: the competition takes CSV submissions, a malformed kernel id or version, or a failed submission
            (recorded ``failed``).

    Example:
        >>> submit_kernel("my-code-comp", "me/kit-my-code-comp-inference", 2).status  # doctest: +SKIP
        'pending'
    """
    from kit.kaggle.inference_kernel import read_inference_record

    adapter = get_adapter(name)
    slug = competition_slug(adapter, "submit", "Fix: submit a notebook to a competition.")
    if not adapter.code_competition:
        raise KitError(
            f"{name} ({slug}) takes CSV submissions, not a notebook's output (its adapter does not say "
            f"code_competition=True). Fix: `kit submit {name} CSV` with the file `kit ensemble` wrote."
        )
    _check_kernel(kernel, version)
    version = None if version is None else int(version)
    record = read_inference_record(inference_dir) or {}
    if record.get("kernel") != kernel or record.get("competition") != name:
        record = {}  # built for another notebook: its run and CV say nothing about this one
    runs = (record["run"],) if record.get("run") else None
    sidecar = Sidecar(competition=name, runs=runs, cv_score=record.get("cv_score"))
    text = _describe(sidecar, message, plain_message, kernel_file(kernel, version))
    ledger = Ledger.open(ledger)
    row = ledger.add(
        competition=name,
        file=kernel_file(kernel, version),
        message=text,
        runs=list(sidecar.run_names) if runs else None,
        cv_score=sidecar.cv_score,
        status="uploading",
    )
    client = kaggle or Kaggle()
    sent = _send_recorded(ledger, row, lambda: client.submit_kernel(slug, kernel, version, text, file_name=file_name))
    print(
        f"submitted notebook {kernel_file(kernel, version)[7:]} to {slug} (ref {sent['ref']}): {sent['message']}. "
        f"Kaggle reruns it on the hidden test set; `kit leaderboard {name} --sync` fetches its score."
    )
    return SubmitResult("pending", row, sent["ref"], text)
