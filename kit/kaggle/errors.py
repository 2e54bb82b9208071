"""Kaggle failures as one error type: what the client raised, classified into what to do about it.

``kind`` says how to react: ``transient`` (timeouts, dropped connections, HTTP 5xx and 429: retry with backoff),
``credentials``, ``not_found``, ``limit`` and ``rejected`` (fail at once, with the fix), ``unconfirmed`` (an
upload whose outcome could not be checked).

Example:
    >>> classify_error(TimeoutError("read timed out"), "listing files").kind
    'transient'
"""

from __future__ import annotations

import re

from kit.errors import KitError

__all__ = ["KaggleApiError", "classify_error", "LIMIT_PATTERN"]

# how Kaggle words "you reached the submission limit" in its error texts
LIMIT_PATTERN = re.compile(
    r"allowance|submission limit|limit of \d+|maximum number of submissions|too many submissions", re.I
)


class KaggleApiError(KitError):
    """A Kaggle call that failed; ``kind`` is credentials, not_found, limit, rejected, transient or unconfirmed."""

    def __init__(self, message: str, kind: str, status: int | None = None):
        super().__init__(message)
        self.kind, self.status = kind, status

    @property
    def transient(self) -> bool:
        return self.kind == "transient"


def classify_error(exc: BaseException, what: str, tries: int | None = None) -> KaggleApiError | None:
    """Turn a client exception into a `KaggleApiError` (None: not a network/HTTP error, let it raise).

    Args:
        exc: what the client raised.
        what: the step, e.g. "listing the files of SLUG"; it starts the message.
        tries: how many tries were made, when this is the last one (said in a transient error's message).

    Example:
        >>> classify_error(TimeoutError("read timed out"), "listing files").kind
        'transient'
    """
    import requests
    import urllib3

    status, text = getattr(getattr(exc, "response", None), "status_code", None), str(exc)[:300]
    gave_up = f" (gave up after {tries} tries)" if tries else ""
    if status is None:
        network = (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
            urllib3.exceptions.HTTPError,
            ConnectionError,
            TimeoutError,
        )
        if isinstance(exc, network):
            return KaggleApiError(
                f"{what}: no answer from Kaggle ({type(exc).__name__}: {text}){gave_up}. Fix: check "
                "the network connection (and https://status.kaggle.com), then rerun.",
                "transient",
            )
        return None
    if LIMIT_PATTERN.search(text) and status < 500:
        return KaggleApiError(
            f"{what}: Kaggle refused the submission because of the submission limit (HTTP {status}: "
            f"{text}). Fix: wait until the limit resets (daily limits reset at 00:00 UTC); the CSV "
            "is kept, resubmit it then.",
            "limit",
            status,
        )
    if status in (401, 403):
        return KaggleApiError(
            f"{what}: Kaggle refused the credentials or the permission (HTTP {status}: {text}). Fix: "
            "check ~/.kaggle/kaggle.json (or KAGGLE_USERNAME/KAGGLE_KEY, KAGGLE_API_TOKEN) holds a "
            "current token, and that you joined the competition and accepted its rules on its "
            "Kaggle page.",
            "credentials",
            status,
        )
    if status == 404:
        return KaggleApiError(
            f"{what}: Kaggle does not know this competition, or you have not joined it (HTTP 404: "
            f"{text}). Fix: check the slug and join the competition (accept its rules) on "
            "kaggle.com.",
            "not_found",
            status,
        )
    if status == 429 or status >= 500:
        return KaggleApiError(
            f"{what}: Kaggle answered HTTP {status} ({text}){gave_up}. Fix: rerun later.", "transient", status
        )
    return KaggleApiError(
        f"{what}: Kaggle answered HTTP {status} ({text}). Fix: read the message above; the request "
        "was refused as sent.",
        "rejected",
        status,
    )
