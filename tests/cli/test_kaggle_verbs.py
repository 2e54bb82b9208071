"""The Kaggle verbs of `kit` (kit.cli.kaggle_verbs): help with examples, and no credential in any output or file."""

from __future__ import annotations

import argparse
import base64

from kaggle_server import SLUG, USERNAME, kaggle_env, make_csv, raw, run_cli  # noqa: F401  (fixtures)

from kit.cli.kaggle_verbs import add_kaggle_verbs


def test_no_credential_in_any_written_file_or_output(kaggle_env, raw, capsys, monkeypatch):
    monkeypatch.setenv("VERBOSE", "true")  # the client would print request headers if we let it
    kaggle_env.server.fail("CreateSubmission", "lost_reply")
    assert run_cli(["download", "pcam", "--force", "--keep-zip"]) == 0
    assert run_cli(["submit", "pcam", str(make_csv(raw, kaggle_env.root / "out")), "-m", "x"]) == 0
    kaggle_env.server.score_all(SLUG, public=[0.9])
    assert run_cli(["leaderboard", "pcam", "--sync", "--rank"]) == 0
    secrets = [kaggle_env.key.encode(), base64.b64encode(f"{USERNAME}:{kaggle_env.key}".encode())]
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
    assert list(made) == ["kernel", "download", "submit", "leaderboard"]
    for p in made.values():
        assert "example" in p.epilog and callable(p.get_default("run"))


def test_kernel_build_without_a_competition_says_how_to_name_one(capsys):
    assert run_cli(["kernel", "build"]) == 2
    out = capsys.readouterr().out
    assert "expected a competition after `kit kernel build`, got none. Fix: " in out and "kit kernel build pcam" in out
