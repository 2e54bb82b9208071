"""kit.report.leaderboard: the ledger table, the CV-vs-public plot, and `show_leaderboard` printing one and writing
the other."""

from __future__ import annotations

from kit.kaggle.ledger import Ledger
from kit.report.leaderboard import format_ledger, plot_cv_vs_public, show_leaderboard


def test_table_and_plot(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite")
    assert format_ledger(ledger.rows("pcam")) == "no submissions recorded yet"
    for k, (cv, public) in enumerate([(0.95, 0.94), (0.97, None)]):
        ledger.add(
            competition="pcam",
            file=f"/x/s{k}.csv",
            message="m" * 60,
            status="complete",
            cv_score=cv,
            public_score=public,
            kaggle_ref=k + 1,
            time=f"2026-01-0{k + 1}T00:00:00+00:00",
        )
    text = format_ledger(ledger.rows("pcam"))
    lines = text.splitlines()
    assert lines[0].split()[:6] == ["time", "status", "ref", "cv", "public", "private"]
    assert "s1.csv" in lines[1] and "s0.csv" in lines[2] and "0.9400" in lines[2] and "..." in lines[1]
    png = plot_cv_vs_public(ledger.rows("pcam"), tmp_path / "plots" / "p.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    empty = plot_cv_vs_public(ledger.rows("nothing"), tmp_path / "e.png")
    assert empty.is_file()


def test_show_prints_the_table_and_writes_the_plot(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KIT_SUBMISSIONS_DIR", str(tmp_path / "subs"))
    Ledger().add(competition="pcam", file="/x/a.csv", status="complete", cv_score=0.9, public_score=0.91)
    png = show_leaderboard("pcam")
    assert png == tmp_path / "subs" / "pcam" / "cv_vs_public.png" and png.read_bytes()[:4] == b"\x89PNG"
    assert "a.csv" in capsys.readouterr().out
    other = show_leaderboard("pcam", ledger=tmp_path / "none.sqlite", plot=tmp_path / "o.png")
    assert other == tmp_path / "o.png" and "no submissions recorded yet" in capsys.readouterr().out
