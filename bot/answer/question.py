"""A question read once, into the one value every step of answering takes: its text,
its vector and its word pieces' vectors (one pass of the model), its words and their
BM25 terms, the authors it names, and what its form asks for.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bot.answer.names import named_authors, without_authors
from bot.index.lexical import stemmer, words
from bot.index.snapshot import Snapshot

#: Reads short texts in one pass of the model: each one's unit vector, and its word
#: pieces' unit vectors when the model gives them (:meth:`bot.index.embed.Embedder.read`).
QueryReader = Callable[[list[str]], list[tuple[np.ndarray, np.ndarray | None]]]

#: What kind of answer a question's form asks for, and how to see it in a sentence.
_NUMBER_WORDS = (
    r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|"
    r"forty|fifty|sixty|hundreds?|thousands?|millions?|billions?|dozens?|half|percent)\b"
)
_FORMS = (
    (re.compile(r"\bhow (?:many|much|fast|far|long|old|often|large|big|high|few)\b|"
                r"\b(?:what|which) (?:number|percentage|proportion|share|sum|amount|figures?)\b|"
                r"\bpopulation figures\b", re.I),
     re.compile(_NUMBER_WORDS, re.I)),
    (re.compile(r"^\W*when\b|\b(?:what|which) (?:year|date|day|month|century|age)\b", re.I),
     re.compile(r"\b1\d{3}\b|\b20\d{2}\b|\b(?:January|February|March|April|May|June|July|"
                r"August|September|October|November|December|spring|summer|autumn|winter)\b")),
    (re.compile(r"^\W*(?:who|whom|where)\b|\b(?:which|what) (?:man|woman|person|people|group|"
                r"men|city|town|country|place|officer|author)\b", re.I),
     re.compile(r"(?<=[a-z,;:] )[A-Z][a-z]")),
)  # fmt: skip


def question_form(question: str) -> re.Pattern[str] | None:
    """What an answer to this question must hold, by its form: how many / how much -> a
    number; when -> a date; who / where -> a name. None for why, how and the rest."""
    for asks, holds in _FORMS:
        if asks.search(question):
            return holds
    return None


@dataclass(frozen=True, eq=False)
class Question:
    """A question as every step of answering reads it.

    Attributes:
        text: The question as asked (cleaned of control characters and extra spaces).
        vector: Its unit embedding: with and without the authors it names, averaged
            (see :func:`read_question`).
        tokens: Its word pieces' unit vectors, from the pass that embedded it (None when
            the model gives none: the torch path); the reread of the best quotes uses
            them (:mod:`bot.answer.late`).
        written: Its content words as written (stop words and possessives dropped).
        terms: Their stems: its BM25 terms.
        authors: The essay authors it names (:func:`~bot.answer.names.named_authors`).
        form: What an answer must hold, by its form (:func:`question_form`), if anything.
    """

    text: str
    vector: np.ndarray
    tokens: np.ndarray | None
    written: tuple[str, ...]
    terms: tuple[str, ...]
    authors: frozenset[str]
    form: re.Pattern[str] | None


def read_question(snap: Snapshot, text: str, read: QueryReader) -> Question:
    """Read a question once: its words, names, form and vectors.

    A question that names an author is embedded with and without the name, and the two
    vectors averaged: essays do not name their own author, so the name only pulls the
    vector away from the passages that answer ("What did O'Brien write about the
    negotiations?" fell under the decline threshold), while the name's sense ("FDR": the
    Depression) still helps; the named-author boost in retrieval does the narrowing.
    Library2: hit@3 27 -> 29 of 70 (the name removed alone: 27); the seeds unchanged.

    Args:
        snap: The loaded index (its authors).
        text: The question, already cleaned.
        read: Reads texts with the model, one pass for all of them.
    """
    authors = named_authors(snap, text)
    plain = without_authors(text, authors)
    if not plain or plain == text:
        ((vector, tokens),) = read([text])
    else:
        (asked, tokens), (without, _) = read([text, plain])
        both = np.stack([asked, without]).sum(axis=0)
        vector = (both / max(float(np.linalg.norm(both)), 1e-9)).astype(np.float32)
    written = words(text)
    return Question(text, vector, tokens, tuple(written), tuple(stemmer().stemWords(written)),
                    frozenset(authors), question_form(text))  # fmt: skip
