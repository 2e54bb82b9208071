"""The report's ensemble and leaderboard section: for several runs, their mean blend
(``kit.infer.ensemble.ensemble_runs(method="mean")``): members, weights and the blend's CV, or why they cannot be
blended (different folds, no test predictions, ...); then the ledger rows of the competition, when any.

Example:
    >>> ensemble_section(page, ["runs/pcam/A", "runs/pcam/B"], "pcam")  # doctest: +SKIP
"""

from __future__ import annotations

import pandas as pd

from kit.errors import KitError
from kit.kaggle.ledger import Ledger
from kit.report.leaderboard import format_ledger
from kit.report.page import Page

__all__ = ["ensemble_section", "blend_parts", "ledger_parts"]


def blend_parts(page: Page, run_dirs) -> list[str]:
    """The mean blend of ``run_dirs`` as HTML (one run: a note)."""
    if len(run_dirs) < 2:
        return [page.p("one run: no blend (pass several RUN_DIRs sharing folds to see their mean blend).", "note")]
    from kit.infer.ensemble import ensemble_runs

    try:
        result = ensemble_runs(run_dirs, method="mean")
    except KitError as e:
        return [page.p(f"the runs were not blended: {e}", "warn")]
    members = pd.DataFrame(
        {
            "member": [m.name for m in result.members],
            result.metric: [m.oof_score for m in result.members],
            "weight": [m.weight for m in result.members],
        }
    )
    blend = pd.DataFrame({"member": ["blend (mean)"], result.metric: [result.oof_score], "weight": [1.0]})
    parts = [page.p(f"mean blend of {len(result.members)} runs on {result.cv_rows} shared OOF rows:")]
    parts.append(page.table(pd.concat([members, blend], ignore_index=True)))
    if result.partial:
        parts.append(page.p(result.partial_note(), "note"))
    return parts


def ledger_parts(page: Page, competition: str, ledger=None) -> list[str]:
    """The ledger rows of ``competition`` (``kit.report.leaderboard.format_ledger``), or a note that none exist."""
    frame = Ledger.open(ledger).rows(competition)
    if frame.empty:
        return [page.p(f"no submissions of {competition} in the ledger ({Ledger.open(ledger).path}).", "note")]
    return [page.p(f"submissions of {competition}, newest first:"), page.pre(format_ledger(frame))]


def ensemble_section(page: Page, run_dirs, competition: str, ledger=None) -> None:
    """Add the ``ensemble`` section."""
    parts = [page.h3("Blend"), *blend_parts(page, list(run_dirs))]
    parts += [page.h3("Leaderboard"), *ledger_parts(page, competition, ledger)]
    page.add("ensemble", "Ensemble and leaderboard", parts)
