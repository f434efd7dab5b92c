"""The road a question takes: retrieve, choose each passage's quote, reread the best ones,
decide whether to decline, build the answer. Each step lives in its own module; this one
only puts them in order.

Everything here is a pure function of a loaded :class:`~bot.index.snapshot.Snapshot` and
a :class:`~bot.answer.question.Question`, and returns small frozen dataclasses, so
rendering and attribution need no model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from bot.answer import late
from bot.answer.broad import Broad, main_points
from bot.answer.late import TokenReader
from bot.answer.learned import HAND_SET, Answering
from bot.answer.question import Question
from bot.answer.results import SCORE_DIGITS, Answer, Quote, Ranked, attribute
from bot.answer.retrieve import WEIGHTS, Retrieved, retrieve
from bot.answer.scope import decline_features, unknown_names
from bot.answer.selection import select
from bot.answer.windows import RERANK, Scored, best_quotes, quote_of
from bot.index.snapshot import Snapshot

#: Judgment: an excerpt is shown when its passage or best sentence is at least this much
#: less similar than the decline threshold: the threshold decides whether the library
#: covers the question at all; an answering sentence in older prose often scores well
#: below it.
EXCERPT_MARGIN = 0.15
#: Judgment: with no learned decline, a question naming something no essay mentions is
#: still answered when a passage is at least this similar: another spelling ("Kiev" for
#: the essays' "Kyiv", "Donbass") leaves the rest of the question matching closely
#: (0.65-0.68 on the seeds), while library2's off-topic questions that name an unknown
#: reach at most 0.52.
NAMED_BUT_COVERED = 0.60
#: Cost bound: a summary reads more passages than a question (its points come from many
#: essays).
SUMMARY_RERANK = 60


def answer(
    snap: Snapshot,
    question: Question,
    k: int,
    *,
    answering: Answering = HAND_SET,
    broad: Broad | None = None,
    doc_id: str | None = None,
    demote: Callable[[Ranked], float] | None = None,
    reader: TokenReader | None = None,
) -> Answer:
    """The best verbatim excerpts for a question, or a decline; for a broad question,
    the sentences that carry the main point of the essay it is about.

    Args:
        snap: The loaded index.
        question: The question, read (:func:`~bot.answer.question.read_question`).
        k: How many excerpts at most.
        answering: How to rank and when to decline (learned for a tuned model; see
            :mod:`bot.answer.learned`).
        broad: How to tell and answer a broad question (learned for a tuned model; see
            :mod:`bot.answer.broad`); none: every question is answered from passages.
        doc_id: Only search this essay.
        demote: How much to lower each excerpt (the community's feedback); the quotes
            never change, only their order.
        reader: Gives quotes' token vectors, for an `answering` that rereads the best
            quotes (:mod:`bot.answer.late`).

    Returns:
        The answer: declined when the library cannot answer (the learned decision), or,
        with no learned decision, when nothing is similar enough or the question names
        someone or something no essay mentions (:mod:`bot.answer.scope`) and no passage
        is as close as :data:`NAMED_BUT_COVERED`.

    Raises:
        ValueError: An `answering` that rereads, with no `reader`.
    """
    found = retrieve(snap, question, doc_id)
    said = _from_passages(snap, question, found, k, answering, demote, reader)
    if broad is None or doc_id is not None or not broad.is_broad(question):
        return said
    return _main_points(snap, question, found, k, broad, said)


def _main_points(
    snap: Snapshot, question: Question, found: Retrieved, k: int, broad: Broad, said: Answer
) -> Answer:
    """A broad question's answer: the main points of the essay it is about
    (:func:`~bot.answer.broad.main_points`) in place of the passages' excerpts (`said`).
    Declined only as the passages' answer was, and never when the question names the
    essay or its author and nothing no essay mentions (a broad question asks for the
    gist: it shares few words with any passage)."""
    points, named = main_points(snap, question, found, broad)
    if not points or (said.abstained and not (named and not said.unknown_names)):
        return said
    chosen = tuple(attribute(snap, q) for q in select(points, k))
    return Answer(question.text, False, chosen, said.best_similarity)


def _from_passages(
    snap: Snapshot,
    question: Question,
    found: Retrieved,
    k: int,
    answering: Answering,
    demote: Callable[[Ranked], float] | None,
    reader: TokenReader | None,
) -> Answer:
    """The excerpts of the passages found, or a decline (see :func:`answer`)."""
    learned = answering.decline is not None
    if not learned and found.best < answering.threshold:
        return _declined(snap, question, found.best, learned)
    scored = best_quotes(snap, question, found.ranked(answering.weights)[:RERANK],
                         answering.weights)  # fmt: skip
    if answering.rereads:
        if reader is None:
            raise ValueError("a learned decline or reorder reads quotes token by token")
        scored, meets = late.reread(snap, question, scored, reader, answering.reorder)
        if answering.decline is not None and answering.decline.declines(
            decline_features(snap, question, found.cosines, meets)
        ):
            return _declined(snap, question, found.best, learned)
    pool = _relevant(snap, scored, answering.threshold - EXCERPT_MARGIN)
    if not learned and found.best < NAMED_BUT_COVERED:
        unknown = unknown_names(snap, question.text)
        if unknown or not pool:
            return _declined(snap, question, found.best, learned, unknown)
    if not pool:
        return _declined(snap, question, found.best, learned)
    if demote is not None:
        pool = sorted((replace(e, score=round(e.score - demote(e), SCORE_DIGITS)) for e in pool),
                      key=lambda e: -e.score)  # fmt: skip
    chosen = tuple(attribute(snap, q) for q in select(pool, k))
    return Answer(question.text, not chosen, chosen, round(found.best, SCORE_DIGITS))


def _declined(
    snap: Snapshot,
    question: Question,
    best: float,
    learned: bool,
    unknown: tuple[str, ...] | None = None,
) -> Answer:
    """A decline that says which names in the question no essay mentions (with no learned
    decision, only when no passage is as close as :data:`NAMED_BUT_COVERED`: a name
    spelled otherwise is no reason); `unknown` when they were looked up already."""
    if unknown is None:
        said = learned or best < NAMED_BUT_COVERED
        unknown = unknown_names(snap, question.text) if said else ()
    return Answer(question.text, True, (), round(best, SCORE_DIGITS), unknown)


def _relevant(snap: Snapshot, scored: list[Scored], floor: float) -> list[Quote]:
    """The quotes whose passage or best sentence is at least `floor` similar, best first."""
    return [quote_of(snap, s) for s in scored if s.relevance >= floor]


def summary_quotes(snap: Snapshot, question: Question, threshold: float) -> list[Quote]:
    """The quotes a summary's points are chosen from (a topic's, or each author's on a
    question): the hand-set ranking over more passages than a question reads
    (:data:`SUMMARY_RERANK`), and only quotes on the topic itself (no margin under
    `threshold`); none when no passage reaches it."""
    found = retrieve(snap, question)
    if found.best < threshold:
        return []
    scored = best_quotes(snap, question, found.ranked(WEIGHTS)[:SUMMARY_RERANK], WEIGHTS)
    return _relevant(snap, scored, threshold)
