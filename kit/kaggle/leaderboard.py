"""Kaggle's side of the ledger: pull our submissions' statuses and scores, and find our public leaderboard rank.

Example:
    >>> from kit.kaggle.leaderboard import our_rank, sync_ledger
    >>> sync_ledger("pcam")  # doctest: +SKIP
    (2, 1)
    >>> our_rank("pcam").rank  # doctest: +SKIP
    4
"""

from __future__ import annotations

import dataclasses

from kit.adapters.registry import get_adapter
from kit.errors import KitError
from kit.kaggle.client import Kaggle
from kit.kaggle.ledger import Ledger

__all__ = ["Rank", "sync_ledger", "our_rank"]


@dataclasses.dataclass(frozen=True)
class Rank:
    """Our position on a public leaderboard.

    Attributes:
        team: our team's name.
        rank: position, 1 = first.
        teams: teams on the leaderboard.
        percentile: ``100 * rank / teams`` (lower is better).
        score: the public score the leaderboard counts for us (None if Kaggle gave none).

    Example:
        >>> Rank("kit team", 4, 10, 40.0, 0.962).percentile
        40.0
    """

    team: str
    rank: int
    teams: int
    percentile: float
    score: float | None


def sync_ledger(name: str, *, ledger=None, kaggle: Kaggle | None = None) -> tuple[int, int]:
    """Pull our submissions' statuses and scores from Kaggle into the ledger; returns (updated, added).

    Example:
        >>> sync_ledger("pcam")  # doctest: +SKIP
        (2, 1)
    """
    slug = get_adapter(name).slug
    return Ledger.open(ledger).merge_kaggle(name, (kaggle or Kaggle()).submissions(slug))


def our_rank(name: str, *, ledger=None, kaggle: Kaggle | None = None) -> Rank:
    """Our position on the public leaderboard (our team found through our submissions); recorded in the ledger.

    Raises:
        KitError: when we have no submission yet, or none is scored yet.

    Example:
        >>> our_rank("pcam")  # doctest: +SKIP
        Rank(team='kit team', rank=4, teams=10, percentile=40.0, score=0.962)
    """
    slug, client = get_adapter(name).slug, kaggle or Kaggle()
    teams = {s["team_name"] for s in client.submissions(slug) if s.get("team_name")}
    if not teams:
        raise KitError(
            f"expected at least one submission to {slug} to find our team, found none. Fix: "
            f"`kit submit {name} CSV` first."
        )
    board = client.leaderboard(slug)
    position = next((k for k, row in enumerate(board, 1) if row["team_name"] in teams), None)
    if position is None:
        raise KitError(
            f"expected our team ({', '.join(sorted(teams))}) on the public leaderboard of {slug} "
            f"({len(board)} teams), it is not there yet. Fix: wait until a submission is scored."
        )
    ours = board[position - 1]
    rank = Rank(ours["team_name"], position, len(board), 100.0 * position / len(board), ours["score"])
    Ledger.open(ledger).set_rank(name, rank.rank, rank.teams, rank.score)
    return rank
