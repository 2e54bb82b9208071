"""kit.kaggle.client against the real `kaggle` client and a fake Kaggle on loopback: credentials, the one retry
policy, refusals that fail at once, and a create call whose reply was lost."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest
from kaggle_server import SLUG, USERNAME, api_calls, kaggle_env, make_csv, raw  # noqa: F401  (fixtures)

from kit.kaggle.client import Kaggle
from kit.kaggle.credentials import find_credentials
from kit.kaggle.errors import KaggleApiError

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


# ---- retries and refusals ----


def test_lost_create_reply_makes_no_duplicate(kaggle_env, raw):
    kaggle_env.server.fail("CreateSubmission", "lost_reply")
    csv = make_csv(raw, kaggle_env.root / "out")
    result = Kaggle(sleep=lambda s: None).submit(SLUG, csv, "once only")
    (sub,) = kaggle_env.server.submissions[SLUG]
    assert result["recovered"] and result["ref"] == sub["ref"]
    assert api_calls(kaggle_env.server).count("CreateSubmission") == 1


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


def test_429_waits_for_retry_after(kaggle_env):
    kaggle_env.server.fail("ListSubmissions", (429, {"Retry-After": "7"}), 503)
    slept = []
    assert Kaggle(sleep=slept.append, backoff=0.25).submissions(SLUG) == []
    assert slept == [7.0, 0.5]


def test_transient_failures_give_up_after_the_retries(kaggle_env):
    kaggle_env.server.fail("ListSubmissions", *[500] * 4)
    with pytest.raises(KaggleApiError, match="gave up after 4 tries"):
        Kaggle().submissions(SLUG)


def test_lost_reply_that_cannot_be_checked_is_unconfirmed(kaggle_env, raw):
    server = kaggle_env.server
    server.fail("CreateSubmission", "lost_reply")
    server.fail("ListSubmissions", *[500] * 8)  # 4 tries for the snapshot, 4 for the check after the lost reply
    csv = make_csv(raw, kaggle_env.root / "out")
    with pytest.raises(KaggleApiError, match="may have reached Kaggle.*HTTP 500") as info:
        Kaggle().submit(SLUG, csv, "m")
    assert info.value.kind == "unconfirmed" and info.value.status == 500
    assert api_calls(server).count("CreateSubmission") == 1 and len(server.submissions[SLUG]) == 1


# ---- boundaries ----


def test_kit_kaggle_imports_without_the_client():
    code = (
        "import sys, kit.kaggle.client, kit.kaggle.download, kit.kaggle.submit, kit.kaggle.leaderboard, "
        "kit.kaggle.kernels, kit.cli.kaggle_verbs; print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('kaggle', 'kagglesdk')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
