"""Choosing which quotes an answer shows: the best first, without repeats, and a near tie
going to another voice.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from bot.answer.results import R

#: Judgment: the share of the shorter quote's words inside the other above which two
#: quotes say the same thing (one mostly inside the other).
NEAR_CONTAINED = 0.8
#: Judgment: the word Jaccard above which two quotes say the same thing.
NEAR_DUPLICATE = 0.6
#: Judgment: score given up per excerpt already taken from the same essay (a clearly
#: better quote still wins; a near tie goes to another essay).
DIVERSITY = 0.04


def quote_tokens(text: str) -> set[str]:
    """Lower-cased words of a quote, for near-duplicate checks."""
    return set(re.findall(r"\w+", text.lower()))


def near_duplicate(ta: set[str], tb: set[str]) -> bool:
    """Two quotes' word sets say the same thing (one mostly inside the other, or similar)."""
    if not ta or not tb:
        return False
    shared = len(ta & tb)
    return (
        shared / min(len(ta), len(tb)) >= NEAR_CONTAINED or shared / len(ta | tb) >= NEAR_DUPLICATE
    )


def select(
    pool: list[R],
    k: int,
    per_group: int | None = None,
    group: Callable[[R], str] = lambda e: e.doc_id,
    penalty: float = DIVERSITY,
) -> list[R]:
    """Pick up to `k` excerpts, best first, without repeats.

    Greedy: each pick gives up `penalty` per excerpt already taken from the same group
    (a clearly better quote still wins, a near tie goes to another voice), and skips
    quotes that overlap or nearly repeat one already chosen.

    Args:
        pool: Candidates.
        k: How many at most.
        per_group: A hard cap per group, if any.
        group: What counts as the same voice (the essay by default).
        penalty: Score given up per excerpt already taken from the group.
    """
    pool = list(pool)
    chosen: list[R] = []
    chosen_tokens: list[set[str]] = []
    counts: dict[str, int] = {}
    while pool and len(chosen) < k:
        best = max(pool, key=lambda e: e.score - penalty * counts.get(group(e), 0))
        pool.remove(best)
        toks = quote_tokens(best.quote)
        if any(
            near_duplicate(toks, ct)
            or (c.doc_id == best.doc_id and c.start < best.end and best.start < c.end)
            for c, ct in zip(chosen, chosen_tokens, strict=True)
        ):
            continue
        if per_group is not None and counts.get(group(best), 0) >= per_group:
            continue
        counts[group(best)] = counts.get(group(best), 0) + 1
        chosen.append(best)
        chosen_tokens.append(toks)
    return chosen
