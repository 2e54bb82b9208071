"""Kaggle's side of the ledger: pull our submissions' statuses and scores, and find our public leaderboard rank.

Example:
    >>> from kit.kaggle.leaderboard import our_rank, sync_ledger
    >>> sync_ledger("pcam")  # doctest: +SKIP
    (2, 1)
    >>> our_rank("pcam").rank  # doctest: +SKIP
    4
    >>> wait_for_score("pcam", 31415)["public_score"]  # doctest: +SKIP
    0.9712
"""

from __future__ import annotations

import dataclasses
import os
import time

from kit.adapters.registry import get_adapter
from kit.errors import KitError
from kit.kaggle.client import Kaggle
from kit.kaggle.ledger import Ledger

__all__ = ["Rank", "sync_ledger", "our_rank", "wait_for_score"]


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


def wait_for_score(
    name: str,
    ref: int,
    *,
    ledger=None,
    kaggle: Kaggle | None = None,
    minutes: float = 30.0,
    sleep=time.sleep,
    clock=time.monotonic,
) -> dict:
    """Poll our submissions (the ledger follows each poll) until submission ``ref`` is scored; returns Kaggle's
    record of it (``public_score``, ``private_score``, ``status``).

    Polls start ``KIT_KAGGLE_WAIT_POLL`` seconds apart (default 10) and back off to 60 s; after ``minutes`` the
    submission is left pending in the ledger (``kit leaderboard --sync`` picks its score up later).

    Raises:
        KitError: Kaggle's error status (with its message), the submission missing, or the time spent.
    """
    slug, client, book = get_adapter(name).slug, kaggle or Kaggle(), Ledger.open(ledger)
    delay, deadline = float(os.environ.get("KIT_KAGGLE_WAIT_POLL", "10")), clock() + 60 * minutes
    while True:
        submissions = client.submissions(slug)
        book.merge_kaggle(name, submissions)
        ours = next((s for s in submissions if s["ref"] == ref), None)
        if ours is None:
            raise KitError(
                f"expected submission {ref} among our submissions to {slug}, got {len(submissions)} others. Fix: "
                f"check it with `kit leaderboard {name} --sync`."
            )
        if ours["status"] == "complete":
            return ours
        if ours["status"] == "error":
            why = ours.get("error_description") or "no message"
            raise KitError(
                f"expected Kaggle to score submission {ref}, got an error: {why}. Fix: correct the file as the "
                "message says and submit again (the ledger row records the error)."
            )
        if clock() >= deadline:
            raise KitError(
                f"expected submission {ref} scored within {minutes:g} min, got status {ours['status']!r} still. Fix: "
                f"`kit leaderboard {name} --sync` later picks its score up (the ledger row stays {ours['status']})."
            )
        sleep(delay)
        delay = min(60.0, max(1.0, delay * 1.5)) if delay else 0.0


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
