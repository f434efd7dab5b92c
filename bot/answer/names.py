"""How a question names the library's authors: by full name, surname or initials ("JFK").

Essays do not print their own author's name, so a name in a question is a pointer to an
author's essays (retrieval lifts them), not a word to look for in them.
"""

from __future__ import annotations

import re
from collections.abc import Set as AbstractSet
from functools import lru_cache

from bot.index.lexical import tokenize
from bot.index.snapshot import Snapshot

_INITIAL = re.compile(r"^[A-Z]\.$|^[A-Z]\.[A-Z]\.")
#: Judgment: a name of fewer parts is not written by its initials ("Mark Twain" is never
#: "MT"; "John F. Kennedy" is "JFK").
INITIALS_FROM = 3


#: Definition: what follows a name to tell a father from a son ("Oliver Wendell Holmes
#: Sr."): never the part of the name people use alone, nor an initial.
_SUFFIX = re.compile(r"^(?:Sr|Jr|Snr|Jnr)\.?$|^(?:II|III|IV)$")


def _without_suffix(name: str) -> list[str]:
    words = [w.rstrip(",") for w in name.split()]
    return words[:-1] if len(words) > 1 and _SUFFIX.match(words[-1]) else words


def surname(name: str) -> str:
    """The part of a name people use alone: after the last initial ("W. E. B. Du Bois" ->
    "Du Bois", "John F. Kennedy" -> "Kennedy"), else the last word ("Mark Twain"), a
    suffix left out ("Oliver Wendell Holmes Sr." -> "Holmes")."""
    words = _without_suffix(name)
    initials = [i for i, w in enumerate(words) if _INITIAL.match(w)]
    rest = words[initials[-1] + 1 :] if initials else words[-1:]
    return " ".join(rest) or name


def initials(name: str) -> str:
    """A name's initials, as people write some names ("Franklin D. Roosevelt" -> "FDR",
    "John F. Kennedy" -> "JFK"); empty for a name of fewer than three parts."""
    parts = [w for w in re.split(r"[\s.]+", " ".join(_without_suffix(name))) if w[:1].isalpha()]
    return "".join(w[0].upper() for w in parts) if len(parts) >= INITIALS_FROM else ""


def _name_pattern(name: str) -> str:
    """A name as a whole word, possessive or not ("JFK", "JFK's")."""
    return rf"(?<!\w){re.escape(name)}(?:'s|’s)?(?!\w)"


@lru_cache(maxsize=1024)
def _name_regex(name: str) -> re.Pattern[str]:
    return re.compile(_name_pattern(name.casefold()))


def _names(author: str) -> tuple[str, ...]:
    return (author, surname(author), initials(author))


@lru_cache(maxsize=256)
def _author_names(authors: frozenset[str]) -> tuple[tuple[str, tuple[re.Pattern[str], ...]], ...]:
    """Each author with the patterns of every way of naming them (built once a library)."""
    return tuple((a, tuple(_name_regex(n) for n in _names(a) if n)) for a in sorted(authors))


def named_authors(snap: Snapshot, question: str) -> set[str]:
    """The essay authors a question names: by full name, surname or initials ("JFK"); an
    author named only inside another's longer name is not ("George W. Bush" does not name
    George H. W. Bush, whose surname it holds)."""
    folded = question.casefold()
    spans = {author: [m.span() for p in patterns for m in p.finditer(folded)]
             for author, patterns in _author_names(snap.authors())}  # fmt: skip
    found = {author: where for author, where in spans.items() if where}
    return {
        author
        for author, where in found.items()
        if not all(_inside(span, author, found) for span in where)
    }


def _inside(span: tuple[int, int], author: str, found: dict[str, list[tuple[int, int]]]) -> bool:
    """Whether a match of `author` lies within a longer match of another named author."""
    lo, hi = span
    return any(o_lo <= lo and hi <= o_hi and (o_hi - o_lo) > (hi - lo)
               for other, where in found.items() if other != author
               for o_lo, o_hi in where)  # fmt: skip


def without_authors(question: str, authors: AbstractSet[str]) -> str:
    """The question with every way it names these authors taken out ("What did FDR say
    about fear?" -> "What did say about fear?"): what is left is what it asks about."""
    # Longest first, over every author at once: "George W. Bush" goes whole before the
    # surname "Bush" it shares with George H. W. Bush (a set's order would vary by run).
    names = {n for author in authors for n in _names(author) if n}
    for name in sorted(names, key=lambda n: (-len(n), n)):
        question = re.sub(_name_pattern(name), " ", question, flags=re.IGNORECASE)
    return " ".join(question.split())


@lru_cache(maxsize=8)
def author_terms(authors: frozenset[str]) -> frozenset[str]:
    """The BM25 terms of every way of naming these authors (names, surnames, initials)."""
    return frozenset(name_terms(set(authors)))


def name_terms(authors: AbstractSet[str]) -> set[str]:
    """The BM25 terms of the authors' names: a question's "Twain" is a pointer to his
    essays (the named-author boost), not a word to look for in them."""
    return {t for a in authors for n in _names(a) for t in tokenize(n)}
