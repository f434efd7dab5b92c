"""What answering returns: small frozen dataclasses that front ends render without the
model. An :class:`Excerpt` is a verbatim quote with everything needed to attribute it;
an :class:`Answer` is the excerpts for a question, best first, or a decline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from bot.index.snapshot import Snapshot
from bot.ingest.model import Document, EssayMeta, Role

#: Who a reader comment is attributed to when its writer is unknown.
UNKNOWN_COMMENTER = "reader comment"
#: Definition: the decimals a score is given to (what JSON and the tests compare).
SCORE_DIGITS = 4


@dataclass(frozen=True)
class Excerpt:
    """A verbatim quote with everything needed to attribute it.

    ``quote == document.text[start:end]`` always holds. ``author`` is who wrote these words:
    the essay's author, someone the essay quotes (then ``quoted_by`` names the essay's
    author), or for a reader comment its writer if known, else "reader comment".
    """

    quote: str
    essay: EssayMeta
    author: str
    role: Role
    start: int
    end: int
    score: float
    paragraph: int
    note: str | None = None
    quoted_by: str | None = None

    @property
    def doc_id(self) -> str:
        """The essay's id (what ranking and de-duplicating quotes group by)."""
        return self.essay.doc_id

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form: the excerpt's fields and its essay's, flat (``author`` is who
        wrote the words, ``essay_author`` who wrote the essay)."""
        e = self.essay
        return {"quote": self.quote, "doc_id": e.doc_id, "title": e.title,
                "author": self.author, "date": e.date, "source": e.source, "role": self.role,
                "start": self.start, "end": self.end, "score": self.score,
                "paragraph": self.paragraph, "essay_author": e.author, "note": self.note,
                "quoted_by": self.quoted_by, "via": e.via, "url": e.url}  # fmt: skip


class Ranked(Protocol):
    """What ranking and de-duplicating quotes needs of one (an Excerpt or a Quote)."""

    @property
    def doc_id(self) -> str: ...
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...
    @property
    def score(self) -> float: ...
    @property
    def quote(self) -> str: ...


R = TypeVar("R", bound=Ranked)


@dataclass(frozen=True)
class Quote:
    """A scored quote before it is attributed: enough to rank, demote and de-duplicate.
    Attributing needs the essay's paragraphs, read only for the quotes an answer keeps
    (at 10,000 essays, reading them for every candidate cost 2-3 ms a question)."""

    doc_id: str
    start: int
    end: int
    paragraph_index: int
    score: float
    quote: str


@dataclass(frozen=True)
class Answer:
    """The excerpts for a question, best first, or a decline."""

    question: str
    abstained: bool
    excerpts: tuple[Excerpt, ...]
    best_similarity: float = 0.0
    unknown_names: tuple[str, ...] = ()  # names in the question no essay mentions


def make_excerpt(
    doc: Document, start: int, end: int, paragraph_index: int, score: float
) -> Excerpt:
    """Build an excerpt for ``doc.text[start:end]``, attributed by its paragraph."""
    para = doc.paragraphs[paragraph_index]
    if para.role == Role.COMMENT:
        author = para.author or UNKNOWN_COMMENTER
    else:
        author = para.author or doc.meta.author or "unknown author"
    return Excerpt(
        quote=doc.text[start:end],
        essay=doc.meta,
        author=author,
        role=para.role,
        start=start,
        end=end,
        score=round(float(score), SCORE_DIGITS),
        paragraph=para.number,
        note=para.note,
        quoted_by=para.quoted_by,
    )


def attribute(snap: Snapshot, q: Quote) -> Excerpt:
    """The excerpt for a quote: who wrote it, where and when."""
    return make_excerpt(snap.docs[q.doc_id], q.start, q.end, q.paragraph_index, q.score)
