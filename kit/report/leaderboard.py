"""The leaderboard report: the ledger as a table (CV vs public vs private, newest first) and a CV-vs-public plot.

Example:
    >>> from kit.report.leaderboard import show_leaderboard
    >>> show_leaderboard("pcam")  # doctest: +SKIP
    PosixPath('submissions/pcam/cv_vs_public.png')
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kit import paths
from kit.adapters.registry import get_adapter
from kit.kaggle.ledger import Ledger
from kit.metrics import get_metric

__all__ = ["format_ledger", "metric_line", "plot_cv_vs_public", "show_leaderboard"]


def format_ledger(frame: pd.DataFrame) -> str:
    """The table ``kit leaderboard`` prints: CV vs public vs private, newest first.

    Example:
        >>> format_ledger(Ledger("/nonexistent/ledger.sqlite").rows())
        'no submissions recorded yet'
    """
    if frame.empty:
        return "no submissions recorded yet"

    def number(value, digits=4):
        return "" if value is None or pd.isna(value) else f"{value:.{digits}f}"

    table = pd.DataFrame(
        {
            "time": frame["time"].astype(str).str.slice(0, 16).str.replace("T", " "),
            "status": frame["status"],
            "ref": frame["kaggle_ref"].map(lambda v: "" if pd.isna(v) else str(int(v))),
            "cv": frame["cv_score"].map(number),
            "public": frame["public_score"].map(number),
            "private": frame["private_score"].map(number),
            "rank": [
                ("" if pd.isna(r) else f"{int(r)}/{int(t)}" if not pd.isna(t) else str(int(r)))
                for r, t in zip(frame["rank"], frame["teams"])
            ],
            "file": frame["file"].map(lambda f: Path(str(f)).name if f is not None else ""),
            "message": frame["message"].fillna("").map(lambda m: m if len(m) <= 48 else m[:45] + "..."),
        }
    )
    return table.to_string(index=False)


def metric_line(name: str) -> str:
    """What the scores of competition ``name`` are: its metric and direction (lower-is-better metrics exist).

    Example:
        >>> metric_line("pcam")
        'scores: roc_auc (higher is better)'
    """
    metric = get_metric(get_adapter(name).metric)
    return f"scores: {metric.name} ({'higher' if metric.higher_is_better else 'lower'} is better)"


def plot_cv_vs_public(frame: pd.DataFrame, path, metric: str = "score") -> Path:
    """Scatter CV score against public score (scored rows), diagonal for reference; writes a PNG (Agg backend).

    Example:
        >>> plot_cv_vs_public(Ledger().rows("pcam"), "submissions/pcam/cv_vs_public.png")  # doctest: +SKIP
        PosixPath('submissions/pcam/cv_vs_public.png')
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scored = frame.dropna(subset=["cv_score", "public_score"])
    fig, ax = plt.subplots(figsize=(5, 5))
    try:
        if scored.empty:
            ax.text(
                0.5,
                0.5,
                "no submission has both a CV and a public score yet",
                ha="center",
                va="center",
                fontsize=8,
                transform=ax.transAxes,
            )
        else:
            ax.scatter(scored["cv_score"], scored["public_score"], c=range(len(scored))[::-1], cmap="viridis")
            lo = float(min(scored["cv_score"].min(), scored["public_score"].min()))
            hi = float(max(scored["cv_score"].max(), scored["public_score"].max()))
            pad = max(1e-3, (hi - lo) * 0.05)
            ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "--", color="grey", lw=1)
            for _, row in scored.head(10).iterrows():
                ax.annotate(
                    str(int(row["kaggle_ref"])) if not pd.isna(row["kaggle_ref"]) else "",
                    (row["cv_score"], row["public_score"]),
                    fontsize=6,
                )
        ax.set_xlabel(f"CV {metric} (out-of-fold)")
        ax.set_ylabel(f"public leaderboard {metric}")
        ax.set_title("CV vs public score (darker = older)")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
    return path


def show_leaderboard(name: str, *, ledger=None, plot=None) -> Path:
    """Print the ledger (CV vs public vs private, newest first) and write the CV-vs-public plot; returns its path.

    Args:
        name: kit competition name.
        ledger: a `Ledger` or its path (default ``submissions/ledger.sqlite``).
        plot: PNG to write (default ``submissions/<name>/cv_vs_public.png``).

    Example:
        >>> show_leaderboard("pcam")  # doctest: +SKIP
        PosixPath('submissions/pcam/cv_vs_public.png')
    """
    frame = Ledger.open(ledger).rows(name)
    print(metric_line(name))
    print(format_ledger(frame))
    metric = get_adapter(name).metric
    return plot_cv_vs_public(frame, plot or paths.submissions_dir() / name / "cv_vs_public.png", metric)
