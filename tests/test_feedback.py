"""Feedback: a 👎 lowers an excerpt for similar questions only, by a bounded amount, and
never changes a quote; declined and down-rated questions become the gaps digest."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from bot.answer.engine import Engine
from bot.answer.feedback import DAY, HALF_LIFE_DAYS, MAX_DEMOTION, PER_USER, SIMILAR, Asker
from bot.answer.results import Answer, Excerpt
from bot.frontends.cli import main
from bot.frontends.evaluate import normalise, read_questions

QUESTION = "Why can't Putin afford a peace deal?"
PARAPHRASE = "Why is Putin unable to afford a peace deal?"
UNRELATED = "How did Lenin get back to Russia in 1917?"
USERS = ("712345678901234561", "712345678901234562", "712345678901234563", "712345678901234564")


def _scores(engine: Engine, question: str, feedback: bool = True) -> dict[tuple[str, int], float]:
    found = engine.ask(question, k=10, feedback=feedback)
    return {(e.doc_id, e.start): e.score for e in found.excerpts}


def _down(engine: Engine, user: str, n: int = 1) -> tuple[str, int, int, str]:
    """User `user` rates the top excerpt for QUESTION down (`n` times)."""
    found = engine.ask(QUESTION, k=3)
    top = found.excerpts[0]
    for _ in range(n):
        engine.rate(found, [top], -1, Asker(user, "1"))
    return top.doc_id, top.start, top.end, top.quote


def test_a_down_vote_lowers_the_excerpt_for_similar_questions_only(
    private_engine: Engine,
) -> None:
    e = private_engine.embedder
    assert float(e.embed_query(QUESTION) @ e.embed_query(PARAPHRASE)) >= SIMILAR
    assert float(e.embed_query(QUESTION) @ e.embed_query(UNRELATED)) < SIMILAR
    before = {q: _scores(private_engine, q) for q in (QUESTION, PARAPHRASE, UNRELATED)}
    doc_id, start, end, quote = _down(private_engine, "700")
    for q in (QUESTION, PARAPHRASE):
        after = _scores(private_engine, q)
        assert after[(doc_id, start)] == pytest.approx(before[q][(doc_id, start)] - PER_USER)
        others = {key for key in after if key != (doc_id, start)}
        assert all(after[key] == before[q][key] for key in others & set(before[q]))
        assert _scores(private_engine, q, feedback=False) == before[q]
    assert _scores(private_engine, UNRELATED) == before[UNRELATED]
    again = [x for x in private_engine.ask(QUESTION, k=10).excerpts if x.doc_id == doc_id]
    assert any((x.start, x.end, x.quote) == (start, end, quote) for x in again)  # same words


def test_one_user_counts_once_and_the_total_is_capped(private_engine: Engine) -> None:
    before = _scores(private_engine, QUESTION)
    doc_id, start, _, _ = _down(private_engine, "700", n=10)
    after = _scores(private_engine, QUESTION)
    assert after[(doc_id, start)] == pytest.approx(before[(doc_id, start)] - PER_USER)
    for user in ("701", "702", "703", "704", "705"):
        _down(private_engine, user)
    capped = _scores(private_engine, QUESTION)
    assert capped[(doc_id, start)] == pytest.approx(before[(doc_id, start)] - MAX_DEMOTION)


def test_votes_fade_and_admins_can_revoke_them(private_engine: Engine) -> None:
    found = private_engine.ask(QUESTION, k=3)
    top = found.excerpts[0]
    [rating] = private_engine.rate(found, [top], -1, Asker("700"))
    qvec = private_engine.embedder.embed_query(QUESTION)
    store = private_engine.feedback
    later = time.time() + HALF_LIFE_DAYS * DAY
    [(_, now_value)] = store.demotions(qvec).items()
    [(_, later_value)] = store.demotions(qvec, now=later).items()
    assert now_value == pytest.approx(PER_USER, rel=1e-3)
    assert later_value == pytest.approx(PER_USER / 2, rel=1e-3)
    assert store.revoke(rating) and not store.revoke(rating)
    assert store.demotions(qvec) == {}
    assert _scores(private_engine, QUESTION) == _scores(private_engine, QUESTION, feedback=False)


def test_gaps_group_declined_and_down_rated_questions(
    private_engine: Engine, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for user, q in ((USERS[0], "What is a good banana bread recipe?"),
                    (USERS[1], "How do I bake banana bread?"),
                    (USERS[2], "Banana bread recipe please"),
                    (USERS[0], "Who won the 1998 football world cup?")):  # fmt: skip
        assert private_engine.ask(q, asker=Asker(user, "9")).abstained
    found = private_engine.ask(QUESTION)
    private_engine.rate(found, list(found.excerpts[:1]), -1, Asker(USERS[3]))
    gaps = private_engine.feedback.gaps()
    assert gaps[0].count == 3 and gaps[0].users == 3 and gaps[0].declined == 3
    assert "banana" in gaps[0].question.lower()
    assert {g.question for g in gaps[1:]} == {"Who won the 1998 football world cup?", QUESTION}
    assert next(g for g in gaps if g.question == QUESTION).rated_down == 1
    monkeypatch.setenv("INDEX_DIR", str(private_engine.settings.index_dir))
    assert main(["gaps"]) == 0
    assert capsys.readouterr().out.startswith("1. “")
    assert main(["gaps", "--forget", USERS[0]]) == 0
    assert "Deleted 2 entries" in capsys.readouterr().out
    assert private_engine.feedback.gaps()[0].count == 2
    raw = (private_engine.settings.index_dir / "feedback.sqlite").read_bytes()
    assert b"banana" in raw and not any(u.encode() in raw for u in USERS)  # hashed only


def _mrr(line: str) -> float:
    found = re.search(r"MRR (\d\.\d+)", line)
    assert found, line
    return float(found.group(1))


def _answered_once(engine: Engine, items: list[dict[str, Any]]) -> tuple[Answer, list[Excerpt]]:
    """Of the questions answered in the top three by exactly one of their five excerpts,
    the one whose answering excerpt leads the next by least (what a demotion can move),
    with that excerpt."""
    closest: tuple[float, Answer, Excerpt] | None = None
    for item in items:
        found = engine.ask(item["question"], k=5)
        phrases = [normalise(p) for p in item.get("must_quote", [])]
        holding = [e for e in found.excerpts if any(p in normalise(e.quote) for p in phrases)]
        if len(holding) != 1 or found.excerpts.index(holding[0]) >= 3:
            continue
        at = found.excerpts.index(holding[0])
        lead = holding[0].score - found.excerpts[at + 1].score
        if closest is None or lead < closest[0]:
            closest = (lead, found, holding[0])
    assert closest is not None, "no question answered once in the top three"
    return closest[1], [closest[2]]


def test_eval_scores_with_and_without_feedback_and_admins_revoke_from_the_cli(
    private_engine: Engine, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import DEV_EVAL

    monkeypatch.setenv("INDEX_DIR", str(private_engine.settings.index_dir))
    # A question whose answer the engine finds once among its first five excerpts, in
    # the top three. Everyone rates that excerpt down: scored with feedback, the set's
    # MRR falls; without, it is what it was.
    assert main(["eval", str(DEV_EVAL)]) == 0
    before = _mrr(capsys.readouterr().out.splitlines()[-1])
    found, answer = _answered_once(private_engine, read_questions(DEV_EVAL))
    ids = [i for user in USERS for i in private_engine.rate(found, answer, -1, Asker(user))]
    assert main(["eval", "--feedback", str(DEV_EVAL)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("with feedback:") and out[1].startswith("without feedback:")
    assert _mrr(out[0]) < before and _mrr(out[1]) == before
    assert all(private_engine.feedback.revoke(i) for i in ids)
    [rating] = private_engine.rate(found, list(found.excerpts[:1]), -1, Asker(USERS[0]))
    assert main(["feedback"]) == 0
    assert capsys.readouterr().out.startswith(f"{rating}: 👎 {found.excerpts[0].doc_id}[")
    assert main(["feedback", "--revoke", str(rating)]) == 0
    assert main(["feedback", "--revoke", str(rating)]) == 2  # already revoked
    assert private_engine.feedback.demotions(private_engine.embedder.embed_query(QUESTION)) == {}
