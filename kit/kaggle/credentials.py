"""Kaggle credentials, found the way the official client finds them, and never printed, logged or stored.

``find_credentials`` reports only *where* they are (a file or environment variables) and warns when a file is
readable by other users.

Example:
    >>> find_credentials().method  # doctest: +SKIP
    'api_key'
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import warnings
from pathlib import Path

from kit.kaggle.errors import KaggleApiError

__all__ = ["Credentials", "find_credentials", "config_dir", "NO_CREDENTIALS"]

NO_CREDENTIALS = (
    "expected Kaggle credentials, found none (looked for KAGGLE_API_TOKEN, ~/.kaggle/access_token, {json}, "
    "KAGGLE_USERNAME/KAGGLE_KEY and ~/.kaggle/credentials.json). Fix: create a token at "
    "https://www.kaggle.com/settings (API section) and save it as {json} (chmod 600), or set KAGGLE_USERNAME and "
    "KAGGLE_KEY. Steps without uploads still work: `kit submit --dry-run`, `kit leaderboard` without --sync."
)


@dataclasses.dataclass(frozen=True)
class Credentials:
    """Where the Kaggle credentials come from (never the secret itself).

    Attributes:
        method: ``access_token``, ``api_key`` or ``oauth``.
        source: the file or environment variables that hold them.
    """

    method: str
    source: str


def config_dir() -> Path:
    """The folder holding kaggle.json, chosen like the client does (KAGGLE_CONFIG_DIR, ~/.kaggle, XDG)."""
    if os.environ.get("KAGGLE_CONFIG_DIR"):
        return Path(os.environ["KAGGLE_CONFIG_DIR"])
    home = Path(os.path.expanduser("~")) / ".kaggle"
    if sys.platform.startswith("linux") and not home.exists():
        return Path(os.environ.get("XDG_CONFIG_HOME") or Path(os.path.expanduser("~")) / ".config") / "kaggle"
    return home


def _warn_if_readable(path: Path) -> None:
    if os.name != "nt" and path.is_file() and path.stat().st_mode & 0o044:
        warnings.warn(
            f"your Kaggle credentials file {path} is readable by other users. Fix: chmod 600 {path}", stacklevel=3
        )


def _token_source() -> tuple[str, Path | None] | None:
    if os.environ.get("KAGGLE_KERNEL_RUN_TYPE") and os.environ.get("KAGGLE_DATA_PROXY_URL"):
        path = os.environ.get("KAGGLE_API_V1_TOKEN")
        if path and Path(path).is_file() and Path(path).read_text().strip():
            return "KAGGLE_API_V1_TOKEN file", Path(path)
    token = os.environ.get("KAGGLE_API_TOKEN")
    if token:
        return ("KAGGLE_API_TOKEN file", Path(token)) if Path(token).exists() else ("KAGGLE_API_TOKEN", None)
    for name in ("access_token", "access_token.txt"):
        path = Path(os.path.expanduser("~")) / ".kaggle" / name
        if path.is_file() and path.read_text().strip():
            return str(path), path
    return None


def find_credentials() -> Credentials:
    """Locate Kaggle credentials in the client's order; warn when the file is readable by others.

    Raises:
        KaggleApiError: (kind ``credentials``) when there are none, naming the places looked at and the fix.

    Example:
        >>> find_credentials().method  # doctest: +SKIP
        'api_key'
    """
    token = _token_source()
    if token:
        if token[1] is not None:
            _warn_if_readable(token[1])
        return Credentials("access_token", token[0])
    config = config_dir() / "kaggle.json"
    values = {}
    if config.is_file():
        with contextlib.suppress(ValueError, OSError):
            values = json.loads(config.read_text()) or {}
    values = values if isinstance(values, dict) else {}
    from_env = {k for k in ("username", "key") if os.environ.get(f"KAGGLE_{k.upper()}")}
    if {"username", "key"} <= set(values) | from_env:
        if from_env == {"username", "key"}:
            return Credentials("api_key", "KAGGLE_USERNAME/KAGGLE_KEY environment variables")
        _warn_if_readable(config)
        return Credentials("api_key", str(config) if not from_env else f"{config} and environment variables")
    oauth = Path(os.path.expanduser("~")) / ".kaggle" / "credentials.json"
    if oauth.is_file():
        _warn_if_readable(oauth)
        return Credentials("oauth", str(oauth))
    raise KaggleApiError(NO_CREDENTIALS.format(json=config), "credentials")
