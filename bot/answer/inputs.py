"""What users type, made usable or refused in one line: a question (or a line, a
message) checked, and an essay's name resolved to the one essay it means.
"""

from __future__ import annotations

import re
import unicodedata

from bot.errors import UserError
from bot.index.snapshot import Snapshot
from bot.ingest.model import Document, EssayMeta


class InputError(UserError):
    """The user's input cannot be used; the message says why, in one line."""


def clean_question(text: str, limit: int, what: str = "question") -> str:
    """Validate a question (or another text a user sends: a line, a message).

    Args:
        text: What the user sent.
        limit: The most characters accepted.
        what: What to call it in the error messages.

    Raises:
        InputError: Empty, too long, or with control characters.
    """
    if any(unicodedata.category(ch) == "Cs" for ch in text):  # undecodable bytes (argv)
        raise InputError(f"The {what} is not valid UTF-8 text; please send plain text.")
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in text):
        raise InputError(f"The {what} contains control characters; please send plain text.")
    question = " ".join(text.split())
    if not question:
        raise InputError(f"The {what} is empty.")
    if len(question) > limit:
        raise InputError(
            f"The {what} is {len(question):,} characters long; the limit is {limit:,}."
        )
    if not any(ch.isalnum() for ch in question):
        raise InputError(f"The {what} has no words in it.")
    return question


def match_essays(snap: Snapshot, name: str) -> list[EssayMeta]:
    """Essays a name can mean, most specific match first: the exact id, the exact
    title, the name as whole words of an id, title or author ("Federalist No. 5" is not
    No. 50), then as any part of them. Only the first kind that matches counts.

    An empty name matches every essay (autocomplete before anything is typed).
    """
    needle = " ".join(name.split()).casefold()
    docs = snap.docs.essays()
    if not needle:
        return docs
    if needle in snap.docs:
        return [snap.docs.records[needle].meta]
    words = re.compile(rf"(?<!\w){re.escape(needle)}(?!\w)")

    def fields(d: EssayMeta) -> list[str]:
        return [d.doc_id, " ".join(d.title.split()).casefold(), (d.author or "").casefold()]

    tiers = (
        lambda d: fields(d)[1] == needle,
        lambda d: any(words.search(f) for f in fields(d)),
        lambda d: d.doc_id.startswith(needle) or any(needle in f for f in fields(d)),
    )
    for tier in tiers:
        found = [d for d in docs if tier(d)]
        if found:
            return found
    return []


def resolve_essay(snap: Snapshot, name: str) -> Document:
    """The one essay a name means (see :func:`match_essays`).

    Raises:
        InputError: None or several match.
    """
    if not name.strip():
        raise InputError("Name an essay (an id or part of its title).")
    matches = match_essays(snap, name)
    if len(matches) == 1:
        return snap.docs[matches[0].doc_id]
    if not matches:
        listing = "; ".join(f"{d.doc_id} ({d.title})" for d in snap.docs.essays())
        raise InputError(f"No essay matches {name!r}. Essays: {listing}")
    listing = "; ".join(f"{d.doc_id} ({d.title})" for d in matches)
    raise InputError(f"{name!r} matches several essays: {listing}")
