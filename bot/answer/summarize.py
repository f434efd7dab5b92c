"""Extractive summaries and perspectives: every point is a sentence the author wrote.

- Essay summary: key sentences chosen at index time (:mod:`bot.index.keypoints`) and stored
  with the generation, so serving one is a lookup; shown in the essay's order.
- Topic summary: the most relevant sentences across the library, at most two per essay,
  grouped by essay, essays ordered by relevance.
- Perspectives: one or two quotes per author on a question, side by side.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bot.answer.ask import summary_quotes
from bot.answer.question import Question
from bot.answer.results import Excerpt, attribute, make_excerpt
from bot.answer.selection import near_duplicate, quote_tokens, select
from bot.index.snapshot import Snapshot
from bot.ingest.model import Document, Role

#: Judgment: the most points a topic summary takes from one essay...
TOPIC_PER_ESSAY = 2
#: Judgment: ...and from how many essays.
TOPIC_ESSAYS = 5
#: Judgment: the most quotes of one author in perspectives...
PER_AUTHOR = 2
#: Judgment: ...the second only when it scores at most this much below the first.
SECOND_QUOTE_MARGIN = 0.06


class SummaryKind(StrEnum):
    """What a summary is of: one essay, a topic (grouped by essay), or a question
    (grouped by author: each one's position)."""

    ESSAY = "essay"
    TOPIC = "topic"
    PERSPECTIVES = "perspectives"


@dataclass(frozen=True)
class Summary:
    """Points (verbatim, attributed excerpts) of an essay, a topic or a question."""

    kind: SummaryKind
    subject: str
    abstained: bool
    points: tuple[Excerpt, ...]

    def as_dict(self) -> dict[str, Any]:
        """The JSON object of the CLI contract."""
        return {
            "kind": self.kind,
            "subject": self.subject,
            "abstained": self.abstained,
            "points": [p.as_dict() for p in self.points],
        }


def essay_summary(snap: Snapshot, doc: Document, n_points: int) -> Summary:
    """The stored summary of an essay, its `n_points` best points in essay order."""
    stored = snap.extras.get("summary", {}).get(doc.meta.doc_id, {}).get("value", [])
    best = sorted(stored, key=lambda p: p["rank"])[: max(1, n_points)]
    points = tuple(
        make_excerpt(doc, p["start"], p["end"], p["paragraph"], p["score"])
        for p in sorted(best, key=lambda p: p["start"])
    )
    return Summary(SummaryKind.ESSAY, doc.meta.doc_id, not points, points)


def _essay_words(snap: Snapshot, question: Question, threshold: float) -> list[Excerpt]:
    """The essays' own quotes on a topic or question (reader comments left out), each
    attributed: summaries group them by essay or author (:func:`~bot.answer.ask.summary_quotes`)."""
    attributed = (attribute(snap, q) for q in summary_quotes(snap, question, threshold))
    return [e for e in attributed if e.role != Role.COMMENT]


def topic_summary(snap: Snapshot, topic: Question, threshold: float) -> Summary:
    """The most relevant sentences on a topic, grouped by essay (best essay first)."""
    chosen = select(
        _essay_words(snap, topic, threshold),
        TOPIC_PER_ESSAY * TOPIC_ESSAYS,
        per_group=TOPIC_PER_ESSAY,
        penalty=0,
    )
    order: dict[str, float] = {}
    for e in chosen:
        order[e.doc_id] = max(order.get(e.doc_id, -1.0), e.score)
    points = sorted(chosen, key=lambda e: (-order[e.doc_id], e.doc_id, -e.score))
    return Summary(SummaryKind.TOPIC, topic.text, not points, tuple(points))


def perspectives(snap: Snapshot, question: Question, threshold: float) -> Summary:
    """Each author's position on a question in their own words: one or two quotes each,
    authors with nothing relevant left out."""
    voices = [e for e in _essay_words(snap, question, threshold) if e.quoted_by is None]
    by_author: dict[str, list[Excerpt]] = {}
    for e in voices:
        by_author.setdefault(e.author, []).append(e)
    points: list[Excerpt] = []
    taken: list[set[str]] = []
    for author in sorted(by_author, key=lambda a: -by_author[a][0].score):
        mine = [
            e
            for e in select(by_author[author], len(by_author[author]), penalty=0)
            if not any(near_duplicate(quote_tokens(e.quote), t) for t in taken)
        ][:PER_AUTHOR]
        if not mine:
            continue  # everything this voice said here repeats another's words
        keep = [mine[0]] + [e for e in mine[1:] if e.score >= mine[0].score - SECOND_QUOTE_MARGIN]
        points.extend(keep)
        taken.extend(quote_tokens(e.quote) for e in keep)
    return Summary(SummaryKind.PERSPECTIVES, question.text, not points, tuple(points))
