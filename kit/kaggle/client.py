"""A thin wrapper over the official ``kaggle`` client: credentials, retries, download, upload, submissions, leaderboard.

The client is imported lazily (only when a Kaggle call is made), so the rest of kit works without credentials.
Credentials are found by ``kit.kaggle.credentials``, failures classified by ``kit.kaggle.errors``.
Competition calls are retried here (the client does not retry them): timeouts,
dropped connections, HTTP 5xx and 429 back off and try again; 401/403, 404 and submission limits fail at once
with a `KaggleApiError` saying what to fix. ``KIT_KAGGLE_RETRIES`` (default 5) and ``KIT_KAGGLE_BACKOFF``
(seconds, default 2; 0 in tests) tune the retries.

Example:
    >>> from kit.kaggle.client import Kaggle
    >>> Kaggle().submissions("histopathologic-cancer-detection")[0]["status"]  # doctest: +SKIP
    'complete'
"""

from __future__ import annotations

import contextlib
import datetime
import io
import os
import time
from collections.abc import Callable
from pathlib import Path

from kit.errors import KitError
from kit.kaggle.credentials import NO_CREDENTIALS, config_dir, find_credentials
from kit.kaggle.errors import LIMIT_PATTERN, KaggleApiError, classify_error
from kit.kaggle.ledger import MATCH_SLACK

__all__ = ["Kaggle", "competition_slug", "UPLOAD_FAILED_MESSAGE"]

UPLOAD_FAILED_MESSAGE = "Could not submit to competition"  # what competition_submit returns when the PUT failed


def competition_slug(adapter, what: str, fix: str) -> str:
    """The adapter's Kaggle slug, when it is a competition (a Kaggle dataset has no competition API).

    Example:
        >>> competition_slug(get_adapter("pcam"), "submit", "Fix: none needed.")  # doctest: +SKIP
        'histopathologic-cancer-detection'
    """
    if adapter.kind != "competition":
        raise KitError(
            f"{adapter.name} is a Kaggle dataset ({adapter.slug}), not a competition: there is nothing "
            f"to {what} through the competition API. {fix}"
        )
    return adapter.slug


def _retry_after(exc) -> float | None:
    """Seconds a 429/503 asked us to wait (Retry-After in seconds), if it said."""
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    return _score(headers.get("Retry-After"))


def _load_client():
    """Import the official client quietly (``import kaggle`` authenticates at import and prints help on failure)."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            from kaggle.api.kaggle_api_extended import KaggleApi
    except ImportError as e:
        raise KitError(
            f"expected the official `kaggle` package, could not import it ({e}). Fix: pip install kaggle"
        ) from e
    return KaggleApi


def _score(value) -> float | None:
    """A float from one of Kaggle's string fields (scores are "" while pending), else None."""
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _submission_dict(s) -> dict:
    return {
        "ref": int(s.ref or 0) or None,
        "file_name": s.file_name,
        "date": s.date,
        "description": s.description or "",
        "status": s.status.name.lower() if s.status is not None else None,
        "public_score": _score(s.public_score),
        "private_score": _score(s.private_score),
        "error_description": s.error_description,
        "team_name": s.team_name,
    }


class Kaggle:
    """The Kaggle calls kit makes, each retried with backoff on transient failures.

    Args:
        retries: extra tries after a transient failure (default ``KIT_KAGGLE_RETRIES`` or 5).
        backoff: first delay in seconds, doubled each try, capped at ``max_delay`` (default ``KIT_KAGGLE_BACKOFF``
            or 2); a 429's Retry-After wins when given.
        sleep: the function that waits (tests pass a recorder).
        quiet: hide the client's progress bars.

    Example:
        >>> Kaggle(retries=2, backoff=0).download("histopathologic-cancer-detection", "data/pcam")  # doctest: +SKIP
        PosixPath('data/pcam/histopathologic-cancer-detection.zip')
    """

    def __init__(
        self,
        *,
        retries: int | None = None,
        backoff: float | None = None,
        max_delay: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        quiet: bool = False,
    ):
        self.retries = int(os.environ.get("KIT_KAGGLE_RETRIES", 5)) if retries is None else int(retries)
        self.backoff = float(os.environ.get("KIT_KAGGLE_BACKOFF", 2.0)) if backoff is None else float(backoff)
        if self.retries < 0 or self.backoff < 0:
            raise KitError(
                f"expected retries >= 0 and backoff >= 0, got {self.retries} and {self.backoff}. "
                "Fix: check KIT_KAGGLE_RETRIES / KIT_KAGGLE_BACKOFF."
            )
        self.max_delay, self.sleep, self.quiet = max_delay, sleep, quiet
        self._api = None

    @property
    def api(self):
        """The authenticated official ``KaggleApi`` (created on first use)."""
        if self._api is None:
            find_credentials()
            api = _load_client()()
            # The client freezes its config folder and environment flags at import; honour the current ones, and
            # never let VERBOSE print request headers (they carry the credentials).
            api.config_dir = str(config_dir())
            api.config = str(config_dir() / "kaggle.json")
            api.args = [a for a in type(api).args if a not in ("--verbose", "-v", "--local")]
            if os.environ.get("KAGGLE_API_ENVIRONMENT") == "LOCALHOST":
                api.args.append("--local")
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    self._retrying("signing in to Kaggle", api.authenticate)
            except SystemExit:
                raise KaggleApiError(NO_CREDENTIALS.format(json=config_dir() / "kaggle.json"), "credentials") from None
            self._api = api
        return self._api

    def _delay(self, attempt: int, exc) -> float:
        after = _retry_after(exc)
        return min(self.max_delay, max(0.0, after) if after is not None else self.backoff * 2**attempt)

    def _retrying(self, what: str, fn, *args, recover: Callable[[], object] | None = None, **kwargs):
        """kit's one retry policy: ``fn(*args, **kwargs)``, tried again with backoff after a transient failure.

        Args:
            what: the step, named in errors.
            fn: the call to make.
            recover: called before each retry (after the wait); a result other than None is returned instead of
                trying again. A create call whose reply was lost uses it to find what the server already made.
        """
        attempt = 0
        while True:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - classified below, unknown errors re-raised
                final = attempt == self.retries
                error = classify_error(exc, what, tries=attempt + 1 if final else None)
                if error is None:
                    raise
                if not error.transient or final:
                    raise error from exc
                delay = self._delay(attempt, exc)
            self.sleep(delay)
            attempt += 1
            found = recover() if recover is not None else None
            if found is not None:
                return found

    def call(self, what: str, fn_name: str, *args, **kwargs):
        """Call ``KaggleApi.<fn_name>(*args, **kwargs)`` with retries; ``what`` names the step in errors."""
        return self._retrying(what, lambda: getattr(self.api, fn_name)(*args, **kwargs))

    def list_files(self, slug: str) -> list[dict]:
        """The competition's data files: ``[{"name", "size"}]``."""
        files, token = [], None
        for _ in range(100):
            page = self.call(
                f"listing the files of {slug}", "competition_list_files", slug, page_token=token, page_size=200
            )
            files += [{"name": f.name, "size": int(f.total_bytes or 0)} for f in page.files or []]
            token = page.next_page_token
            if not token:
                break
        return files

    def download(self, slug: str, folder, *, force: bool = False) -> Path:
        """Download the competition's archive into ``folder`` (a partial download resumes); returns its path."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.call(
            f"downloading {slug}", "competition_download_files", slug, path=str(folder), force=force, quiet=self.quiet
        )
        found = sorted(
            (p for p in folder.glob(f"{slug}.*") if not p.name.endswith(".kaggle-partial")),
            key=lambda p: p.stat().st_mtime,
        )
        if not found:
            raise KaggleApiError(
                f"downloading {slug}: expected {folder}/{slug}.zip after the download, found nothing. "
                "Fix: rerun `kit download`.",
                "rejected",
            )
        return found[-1]

    def submissions(self, slug: str, max_pages: int = 50) -> list[dict]:
        """Our submissions, newest first: ref, file_name, date (UTC), description, status, scores, team_name."""
        out, seen, size = [], set(), 20  # 20: the page size the official CLI uses
        for page in range(1, max_pages + 1):
            batch = (
                self.call(
                    f"listing submissions to {slug}", "competition_submissions", slug, page_number=page, page_size=size
                )
                or []
            )
            new = [_submission_dict(s) for s in batch if s is not None and s.ref not in seen]
            seen.update(s["ref"] for s in new)
            out += new
            if len(batch) < size or not new:
                break
        return out

    def _find_created(self, slug: str, name: str, description: str, since, known: set | None) -> dict | None:
        for s in self.submissions(slug, max_pages=1):
            if known is not None and s["ref"] in known:
                continue
            if s["file_name"] == name and s["description"] == description and (s["date"] is None or s["date"] >= since):
                return s
        return None

    def _create_once(self, slug: str, what: str, file_name: str, description: str, create) -> dict:
        """``create()`` with the retry policy, listing our submissions before each retry: one with this file name and
        description, newer than the first try, means only the reply was lost; it is returned (``recovered``)."""
        since = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - MATCH_SLACK
        try:
            known = {s["ref"] for s in self.submissions(slug, max_pages=1)}
        except KaggleApiError as e:
            if not e.transient:
                raise
            known = None  # every matching submission newer than `since` then counts as ours

        def created_already() -> dict | None:
            try:
                found = self._find_created(slug, file_name, description, since, known)
            except KaggleApiError as e:
                raise KaggleApiError(
                    f"{what}: the last try may have reached Kaggle, and checking our submissions failed too "
                    f"(HTTP {e.status or 'no answer'}). Fix: list our submissions before submitting again, to "
                    "avoid a duplicate.",
                    "unconfirmed",
                    e.status,
                ) from e
            if found is None:
                return None
            return {
                "ref": found["ref"],
                "message": "submitted (reply was lost; found in our submissions)",
                "recovered": True,
            }

        return self._retrying(what, create, recover=created_already)

    def submit(self, slug: str, csv, description: str) -> dict:
        """Upload ``csv`` and create a submission; returns ``{"ref", "message", "recovered"}``.

        Retried like every call, but before each retry our submissions are listed: one that matches the file name
        and description and is newer than the first try means the server took it and only the reply was lost, so
        it is returned (``recovered``) instead of submitting twice. A failed upload (the client returns
        "Could not submit to competition" instead of raising) counts as a transient failure.

        Raises:
            KaggleApiError: credentials, not_found, limit, rejected; transient after the last retry; unconfirmed
                (with the status of the failed check) when a lost reply could not be checked.
        """
        csv, what = Path(csv), f"submitting {Path(csv).name} to {slug}"

        def create() -> dict:
            with contextlib.redirect_stdout(io.StringIO()):
                response = self.api.competition_submit(str(csv), description, slug, quiet=True)
            message = response.message or ""
            if response.ref or message.lower().startswith("successfully"):
                return {"ref": int(response.ref) or None, "message": message, "recovered": False}
            if message == UPLOAD_FAILED_MESSAGE:
                raise ConnectionError("the upload of the file failed")  # transient: retried like a dropped line
            kind = "limit" if LIMIT_PATTERN.search(message) else "rejected"
            raise KaggleApiError(
                f"{what}: Kaggle did not accept the submission: {message!r}. Fix: read Kaggle's "
                "message; the CSV is kept.",
                kind,
            )

        return self._create_once(slug, what, csv.name, description, create)

    def kernel_status(self, kernel: str) -> dict:
        """The status of the kernel's latest run: ``{"status": "queued"|"running"|"complete"|"error"|...,
        "failure": Kaggle's failure message ("" when none)}``."""
        answer = self.call(f"reading the status of the kernel {kernel}", "kernels_status", kernel)
        status = getattr(answer, "status", None)
        return {
            "status": status.name.lower() if status is not None else None,
            "failure": getattr(answer, "failure_message", "") or "",
        }

    def kernel_output(self, kernel: str, folder, file_pattern: str | None = None) -> dict:
        """Download the output of the kernel's latest run into ``folder`` (only files whose path matches
        ``file_pattern``, a regular expression); returns ``{"files": [paths], "log": path of its log or None}``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        slug = kernel.rsplit("/", 1)[-1]

        def fetch():
            with contextlib.redirect_stdout(io.StringIO()):
                files, _ = self.api.kernels_output(kernel, str(folder), file_pattern=file_pattern, force=True)
            return files

        files = self._retrying(f"downloading the output of the kernel {kernel}", fetch)
        log = folder / f"{slug}.log"
        return {"files": [Path(f) for f in files if Path(f) != log], "log": log if log.is_file() else None}

    def submit_kernel(
        self, slug: str, kernel: str, version: int | None, description: str, file_name: str = "submission.csv"
    ) -> dict:
        """Submit the output ``file_name`` of notebook ``kernel`` (``owner/slug``; ``version`` None: its latest) to
        the code competition ``slug``, as ``kaggle competitions submit -k KERNEL -v N -f FILE`` does; returns
        ``{"ref", "message", "recovered"}``.

        Retried like `submit`: before each retry our submissions are listed, and one newer than the first try with
        the same file name and description is taken as this one (only the reply was lost), never submitted twice.

        Raises:
            KaggleApiError: as `submit`.
        """
        what = f"submitting notebook {kernel}" + (f" version {version}" if version else "") + f" to {slug}"

        def create() -> dict:
            with contextlib.redirect_stdout(io.StringIO()):
                response = self.api.competition_submit_code(
                    file_name, description, slug, kernel=kernel, kernel_version=version, quiet=True
                )
            message, ref = getattr(response, "message", "") or "", getattr(response, "ref", None)
            if ref or message.lower().startswith("successfully"):
                return {"ref": int(ref or 0) or None, "message": message, "recovered": False}
            kind = "limit" if LIMIT_PATTERN.search(message) else "rejected"
            raise KaggleApiError(
                f"{what}: Kaggle did not accept the submission: {message!r}. Fix: read Kaggle's message (did that "
                f"version run to the end and write {file_name}?).",
                kind,
            )

        return self._create_once(slug, what, file_name, description, create)

    def leaderboard(self, slug: str, page_size: int = 200, max_pages: int = 100) -> list[dict]:
        """The public leaderboard in rank order: ``[{"team_id", "team_name", "score", "date"}]``."""
        from kagglesdk.competitions.types.competition_api_service import ApiGetLeaderboardRequest

        def page(token):
            with self.api.build_kaggle_client() as client:
                request = ApiGetLeaderboardRequest()
                request.competition_name, request.page_size = slug, page_size
                if token:
                    request.page_token = token
                return client.competitions.competition_api_client.get_leaderboard(request)

        rows, token = [], None
        for _ in range(max_pages):
            response = self._retrying(f"reading the leaderboard of {slug}", page, token)
            for s in response.submissions or []:
                rows.append(
                    {
                        "team_id": s.team_id,
                        "team_name": s.team_name,
                        "score": _score(s.score),
                        "date": s.submission_date,
                    }
                )
            token, previous = response.next_page_token, token
            if not token or token == previous:
                break
        return rows
