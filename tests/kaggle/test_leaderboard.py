"""kit.kaggle.leaderboard against the real `kaggle` client and a fake Kaggle on loopback: sync the ledger, our rank."""

from __future__ import annotations

from pathlib import Path

from kaggle_server import SLUG, TEAM, api_calls, kaggle_env, make_csv, raw, run_cli  # noqa: F401  (fixtures)

from kit.kaggle.ledger import Ledger


def test_sync_rank_table_and_plot(kaggle_env, raw, capsys):
    server = kaggle_env.server
    for k, cv in enumerate([0.95, 0.97]):
        csv = make_csv(raw, kaggle_env.root / "out", f"s{k}", cv=cv)
        assert run_cli(["submit", "pcam", str(csv), "-m", f"v{k}"]) == 0
    server.add_submission(SLUG, "by_hand.csv", "made on the website")
    server.score_all(SLUG, public=[0.940, 0.962, 0.5], private=[0.93, 0.96, 0.5])
    server.other_teams[SLUG] = [(f"team {k}", 0.99 - k * 0.01) for k in range(9)]  # 0.99 .. 0.91
    capsys.readouterr()
    assert run_cli(["leaderboard", "pcam", "--sync", "--rank"]) == 0
    out = capsys.readouterr().out
    assert "2 ledger rows updated, 1 added" in out
    assert f"{TEAM}: position 4 of 10 (top 40.0%)" in out
    frame = Ledger().rows("pcam")
    assert frame["file"].map(lambda f: Path(f).name).tolist() == ["by_hand.csv", "s1.csv", "s0.csv"]
    assert frame["status"].tolist() == ["complete"] * 3
    assert frame["public_score"].tolist() == [0.5, 0.962, 0.94] and frame["rank"].tolist()[1] == 4
    table = out[out.index("time") :]
    assert table.index("s1.csv") < table.index("s0.csv")
    plot = kaggle_env.root / "submissions" / "pcam" / "cv_vs_public.png"
    assert plot.read_bytes()[:4] == b"\x89PNG"
    assert run_cli(["leaderboard", "pcam", "--sync"]) == 0  # idempotent
    assert len(Ledger().rows("pcam")) == 3


def test_sync_reads_every_page(kaggle_env):
    for k in range(45):
        kaggle_env.server.add_submission(SLUG, f"s{k}.csv", f"m{k}", status="COMPLETE", public=k / 100)
    assert run_cli(["leaderboard", "pcam", "--sync"]) == 0
    assert sorted(Ledger().rows("pcam")["kaggle_ref"]) == sorted(s["ref"] for s in kaggle_env.server.submissions[SLUG])
    assert api_calls(kaggle_env.server).count("ListSubmissions") == 3
