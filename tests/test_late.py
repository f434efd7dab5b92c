"""The best quotes reread token by token (bot/answer/late.py): each question token's best
match, checked on vectors whose cosines are known; the learned reorder, checked against
matches computed here from the model's own token vectors."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from bot.answer import late
from bot.answer.ask import answer
from bot.answer.engine import Engine
from bot.answer.learned import Reorder, standardised
from bot.answer.retrieve import retrieve
from bot.answer.windows import RERANK, best_quotes, quote_of

QUESTION = "Why can't Putin afford to end the war?"


def _unit(*rows: tuple[float, ...]) -> np.ndarray:
    m = np.array(rows, dtype=np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def test_each_question_token_finds_its_closest_token_in_each_quote() -> None:
    question = _unit((1, 0, 0), (0, 1, 0))
    near = _unit((1, 0, 0), (0, 0, 1))  # meets the first token exactly, the second not at all
    half = _unit((1, 1, 0))  # meets both at cos 45 degrees
    matches = late.token_matches(question, [near, half, np.zeros((0, 3), np.float32)])
    assert matches.shape == (2, 3)
    assert matches[:, 0] == pytest.approx([1.0, 0.0])
    assert matches[:, 1] == pytest.approx([2**-0.5, 2**-0.5])
    assert matches[:, 2] == pytest.approx([0.0, 0.0])  # a quote with no tokens meets nothing
    assert late.match(matches) == pytest.approx([0.5, 2**-0.5, 0.0])
    assert late.matched(matches) == pytest.approx(1.0 * 0.5 + 2**-0.5 * 0.5)  # best of each


def test_standardised_values_compare_quotes_among_themselves() -> None:
    assert standardised(np.array([1.0, 2.0, 3.0])) == pytest.approx([-1.2247, 0, 1.2247], abs=1e-4)
    assert standardised(np.array([0.4, 0.4])) == pytest.approx([0.0, 0.0])


def test_a_reorder_weighs_the_share_of_the_question_met_against_the_score() -> None:
    scores, meets = [1.0, 0.9, 0.8], np.array([0.5, 0.5, 0.9])
    assert Reorder(match=0.0, spread=0.0).order(scores, meets) == [0, 1, 2]
    # 0.8 + 1.0 * 0.9 = 1.7 against 1.5 and 1.4
    assert Reorder(match=1.0, spread=0.0).order(scores, meets) == [2, 0, 1]
    # z-scores (-0.71, -0.71, 1.41): 0.05 of spread lifts the third past the second
    # (0.8 + 0.071 against 0.9 - 0.035), not past the first (1.0 - 0.035)
    assert Reorder(match=0.0, spread=0.05).order(scores, meets) == [0, 2, 1]


def test_the_engine_rereads_its_best_quotes_with_the_models_token_vectors(engine: Engine) -> None:
    """A reorder that only counts the match puts first the read quote whose tokens meet the
    question best, as computed here from the torch model's token vectors."""
    snap, embedder = engine.snapshot(), engine.embedder
    question = engine.read_question(snap, QUESTION)
    plain = replace(engine.answering, decline=None, reorder=None, threshold=-1.0)
    ranked = retrieve(snap, question).ranked(plain.weights)[:RERANK]
    pool = [quote_of(snap, s) for s in best_quotes(snap, question, ranked, plain.weights)]
    read = pool[: late.QUOTES_READ]
    vectors = embedder.token_vectors_torch([QUESTION] + [q.quote for q in read], late.TOKEN_LIMIT)
    meets = [float((vectors[0] @ v.T).max(axis=1).mean()) for v in vectors[1:]]
    expected = read[int(np.argmax(meets))]
    reorder = replace(plain, reorder=Reorder(match=1000.0, spread=0.0))
    found = answer(snap, question, k=1, answering=reorder, reader=embedder.token_vectors)
    first = found.excerpts[0]
    assert (first.doc_id, first.start, first.end) == (expected.doc_id, expected.start, expected.end)
    assert first.score == pool[0].score  # it takes the best score; the scores keep their scale


def test_a_learned_decline_without_a_token_reader_is_refused(engine: Engine) -> None:
    snap = engine.snapshot()
    question = engine.read_question(snap, QUESTION)
    assert engine.answering.decline is not None
    with pytest.raises(ValueError, match="token by token"):
        answer(snap, question, 3, answering=engine.answering)
