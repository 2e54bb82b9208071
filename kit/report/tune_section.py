"""The report's tuning section: when a run is a trial of a ``kit tune`` search (its folder sits in the search
folder, next to ``trials.csv``), every trial of that search: its values, status and score, best first by the
metric's direction, and the score of each trial in the order they ran.

Example:
    >>> tune_section(page, ["runs/pcam/tune/lr-search/trial_3"])  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kit.metrics import get_metric
from kit.report.page import Page, pyplot

__all__ = ["tune_section", "searches_of"]


def searches_of(run_dirs) -> list[Path]:
    """The ``kit tune`` search folders holding these runs (none for ordinary runs)."""
    return sorted({Path(r).resolve().parent for r in run_dirs if (Path(r).resolve().parent / "trials.csv").is_file()})


def tune_section(page: Page, run_dirs) -> None:
    """Add the ``tuning`` section when some run belongs to a search; otherwise nothing."""
    plt = pyplot()
    parts = []
    for folder in searches_of(run_dirs):
        trials = pd.read_csv(folder / "trials.csv")
        metric = get_metric(trials.columns[-2])  # trials.csv: trial, status, the keys, the metric, run_dir
        best_first = trials.sort_values(metric.name, ascending=not metric.higher_is_better, na_position="last")
        direction = "higher" if metric.higher_is_better else "lower"
        parts.append(
            page.p(f"search {folder.name}: {len(trials)} trials, {metric.name} ({direction} is better); best first:")
        )
        parts.append(page.table(best_first.drop(columns="run_dir")))
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.plot(range(len(trials)), trials[metric.name], "o-")
        ax.set(xlabel="trial (in order)", ylabel=metric.name, title=f"kit tune: {folder.name}")
        ax.grid(alpha=0.3)
        parts.append(page.figure(fig, f"tune_{folder.name}", "score of each trial, in the order they ran"))
    if parts:
        page.add("tuning", "Tuning (kit tune)", parts)
