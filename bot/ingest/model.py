"""What an essay is once read: its metadata, its text as published and its prose
paragraphs, each attributed. Declared once; every layer above hands these around.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bot.errors import UserError
from bot.ingest.metadata import is_web_address


class Role(StrEnum):
    """Whose words a paragraph holds: the essay's (its author's, or someone it quotes:
    see :attr:`Paragraph.quoted_by`) or a reader comment's."""

    ESSAY = "essay"
    COMMENT = "comment"


#: The front-matter fields an :class:`EssayMeta` holds (the rest go to ``Document.extra``).
META_KEYS = ("title", "author", "date", "source", "url", "via")


class DocumentError(UserError):
    """A library file cannot be read as an essay; the message says why in one line."""


@dataclass(frozen=True)
class Paragraph:
    """A kept stretch of prose, as offsets into :attr:`Document.text`.

    Attributes:
        start: Offset of the first character.
        end: Offset one past the last character.
        number: 1-based position among the essay's kept paragraphs ("¶ 12"), or among
            the comments for a comment.
        role: ``essay`` or ``comment``.
        author: Who wrote these words; ``None`` when unknown (e.g. an anonymous comment).
        note: What this stretch is, when it is not the essay proper ("blog introduction").
        quoted_by: When the words are someone else's quoted in the essay, who quotes them.
        block: Paragraphs that share a block are adjacent, with the same attribution.
    """

    start: int
    end: int
    number: int
    role: Role
    author: str | None
    note: str | None = None
    quoted_by: str | None = None
    block: int = 0


@dataclass(frozen=True)
class EssayMeta:
    """Which essay, who wrote it, where and when it was published: everything a quote is
    attributed by. Declared once; a document, the index's record of an essay, a listing
    line and an excerpt each embed it.

    Attributes:
        doc_id: The essay's id (its file stem unless the front matter names one).
        title: Its title.
        author: Who wrote it, when known.
        date: When it was published, as the front matter gives it.
        source: Where it was published.
        url: Where it can be read.
        via: Where it was found, when that is not where it was published.
    """

    doc_id: str
    title: str
    author: str | None = None
    date: str | None = None
    source: str | None = None
    url: str | None = None
    via: str | None = None

    @property
    def link(self) -> str | None:
        """The URL to link to: only a web address (an index written before URLs were
        checked at ingest may hold another kind)."""
        return self.url if self.url and is_web_address(self.url) else None


@dataclass(frozen=True)
class Document:
    """One essay: its metadata, the text as published, and its prose paragraphs."""

    meta: EssayMeta
    text: str
    paragraphs: tuple[Paragraph, ...]
    content_hash: str
    path: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


# --- decoding ---------------------------------------------------------------------------


def content_hash(text: str) -> str:
    """A short, stable hash of some text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]
