"""A quote's share of the question's terms weighs each term by its rarity in the library."""

from __future__ import annotations

import math

import numpy as np

from bot.answer.retrieve import WEIGHTS
from bot.answer.windows import best_run, window_features
from bot.index.lexical import LexicalIndex, tokenize

PASSAGES = [
    "The city of Atlanta grew fast.",
    "The city council met at noon.",
    "A city is a place of many people.",
    "Nobody spoke of the river.",
]


def test_rarity_is_log_of_passages_over_passages_with_the_term() -> None:
    index = LexicalIndex.build(PASSAGES)
    rarity = index.rarity({"citi", "atlanta", "zebra"})
    # By hand from PASSAGES: "city" is in three passages of four, "Atlanta" in one, "zebra"
    # in none (as rare as a term can be).
    assert math.isclose(rarity["citi"], math.log1p(4 / 3), rel_tol=1e-6)
    assert math.isclose(rarity["atlanta"], math.log1p(4 / 1), rel_tol=1e-6)
    assert math.isclose(rarity["zebra"], math.log1p(4 / 1), rel_tol=1e-6)
    assert LexicalIndex.build([]).rarity({"citi"}) == {"citi": 1.0}


def test_the_sentence_with_the_rare_term_wins_a_tie() -> None:
    """Two sentences equally close to "Tell me about the city of Atlanta", each with
    one of its two terms: the one naming Atlanta (one passage of four) is the quote, not
    the one saying "city" (three of four), whichever comes first."""
    question = set(tokenize("Tell me about the city of Atlanta"))
    assert question == {"citi", "atlanta"}
    rarity = LexicalIndex.build(PASSAGES).rarity(question)
    rare, common = "Atlanta grew fast.", "The city council met."
    for first, second in [(rare, common), (common, rare)]:
        toks = [frozenset(tokenize(first)), frozenset(tokenize(second))]
        sims = np.array([0.5, 0.5], dtype=np.float32)
        gram = np.eye(2, dtype=np.float32)
        _, lo, hi = best_run(window_features(sims, gram, toks, [0, 1], rarity), WEIGHTS)
        assert lo == hi
        assert (first, second)[lo] == rare
