"""Who said it: where a remembered line comes from, exact or misremembered.

A line people remember is often a piece of a sentence, with a word changed, dropped or
moved, and its punctuation and case lost. So both sides are compared as plain words
(lower-cased, punctuation dropped): BM25 over the passages narrows the library to a few
dozen passages, rapidfuzz aligns the line inside each (``partial_ratio_alignment``), and
the aligned span, widened to whole words, is scored by its word-level edit distance to the
line. The quote returned is the essay's own text at that span, as written.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Any

from rapidfuzz import fuzz
from rapidfuzz.distance import Indel, Levenshtein

from bot.answer.results import Excerpt, make_excerpt
from bot.index.lexical import stemmer, tokenize
from bot.index.snapshot import Snapshot

#: Cost bound: passages BM25 hands to the aligner...
CANDIDATES = 30
#: Cost bound: ...or for a line of many terms, which BM25 places precisely...
FEW_CANDIDATES = 10
#: Judgment: ...this many terms or more.
MANY_TERMS = 8
#: Judgment: shorter lines match too much by chance.
MIN_WORDS = 3
#: Judgment: a match is close enough when at least this share of its words agree with the line's
#: (word-level edit distance over the longer of the two), and no more words differ than
#: :func:`allowed_differences` allows (a short line must be nearly exact).
MIN_SIMILARITY = 0.6
#: Cost bound: text after a passage that an alignment may reach into (a line across two
#: passages).
OVERLAP = 400
#: Judgment: words either way a rough alignment's ends may move.
SLACK = 3
_WORD = re.compile(r"\w+(?:['’]\w+)*")


@dataclass(frozen=True)
class Match:
    """Where the line stands in an essay, and how close the essay's words are."""

    excerpt: Excerpt
    similarity: float
    words_differ: int

    @property
    def exact(self) -> bool:
        return self.words_differ == 0

    def closeness(self) -> str:
        """ "exact", or "close: 2 words differ"."""
        if self.exact:
            return "exact"
        n = self.words_differ
        return f"close: {n} word{'s' if n != 1 else ''} differ{'' if n != 1 else 's'}"

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of `whosaid --json` (``quote == text[start:end]``)."""
        e, essay = self.excerpt, self.excerpt.essay
        return {
            "quote": e.quote, "doc_id": essay.doc_id, "title": essay.title, "author": e.author,
            "role": e.role, "date": essay.date, "source": essay.source, "start": e.start,
            "end": e.end, "similarity": round(self.similarity, 3), "exact": self.exact,
            "words_differ": self.words_differ, "paragraph": e.paragraph,
            "quoted_by": e.quoted_by, "via": essay.via, "url": essay.url,
        }  # fmt: skip


@dataclass(frozen=True)
class WhoSaid:
    """The answer: the line as asked, and its matches, best first (none: not found)."""

    query: str
    matches: tuple[Match, ...]

    @property
    def found(self) -> bool:
        return bool(self.matches)

    def as_dict(self) -> dict[str, Any]:
        return {"query": self.query, "found": self.found,
                "matches": [m.as_dict() for m in self.matches]}  # fmt: skip


def words(text: str) -> list[str]:
    """The words of a text, as compared: lower-cased, punctuation and apostrophes gone."""
    return [_word(w) for w in _WORD.findall(text)]


def allowed_differences(n_words: int) -> int:
    """How many words may differ in a match of `n_words` words: none up to 4, one up to
    7, two up to 10, three up to 13, ..."""
    return max(0, (n_words - 2) // 3)


def _plain(text: str) -> tuple[str, list[int], list[re.Match[str]]]:
    """The text as its words joined by single spaces (as :func:`words` reads them), where
    each word starts in that string, and the words themselves (their offsets in `text`)."""
    found = list(_WORD.finditer(text))
    plain = [_word(m.group()) for m in found]
    starts, at = [], 0
    for w in plain:
        starts.append(at)
        at += len(w) + 1
    return " ".join(plain), starts, found


def _align(line: str, text: str, offset: int) -> tuple[int, int] | None:
    """The span of `text` (offsets from `offset`) that best holds the line, whole words."""
    plain, starts, found = _plain(text)
    if not plain:
        return None
    aligned = fuzz.partial_ratio_alignment(line, plain)
    if aligned is None or aligned.dest_end <= aligned.dest_start:
        return None
    first = bisect.bisect_right(starts, aligned.dest_start) - 1
    last = bisect.bisect_right(starts, aligned.dest_end - 1) - 1
    return offset + found[first].start(), offset + found[last].end()


def _word(token: str) -> str:
    return token.casefold().replace("'", "").replace("’", "")


def stems(said: list[str]) -> list[str]:
    """Words as compared for closeness: a remembered "obligations" for the essay's
    "obligation" is the same word (Snowball stems, as BM25 uses)."""
    return list(stemmer().stemWords(said))


def _refine(asked: list[str], text: str, start: int, end: int) -> tuple[int, int, int]:
    """The run of whole words around a rough alignment closest to the line, word for word.

    A character alignment drifts by a word or two where words were changed (a changed
    word's letters match nothing); the run's ends are tried a few words either way. Of
    runs as close, the one sharing most words with the line wins (a line with words
    dropped is the whole sentence, not the piece that happens to be as close), then the
    widest (a changed last word is still part of the quote).

    Returns:
        The run's start and end in `text`, and how many words differ from the line.
    """
    around = [m for m in _WORD.finditer(text, max(0, start - 80), end + 80)
              if (m.start() == 0 or not text[m.start() - 1].isalnum())
              and (m.end() == len(text) or not text[m.end()].isalnum())]  # whole words  # fmt: skip
    first = next((k for k, m in enumerate(around) if m.start() >= start), len(around))
    last = next((k for k, m in enumerate(around) if m.end() > end), len(around))
    found = around[max(0, first - SLACK) : last + SLACK]
    n = len(found)
    compared = stems([_word(m.group()) for m in found])
    best = (len(asked) + n + 1, 0, 0, 0)
    for i in range(min(2 * SLACK, n - 1) + 1):
        for j in range(max(i + 1, n - 2 * SLACK), n + 1):
            got = compared[i:j]
            differ = Levenshtein.distance(asked, got)
            shared = len(asked) + len(got) - Indel.distance(asked, got)  # twice the LCS
            key = (differ, -shared, found[i].start(), -found[j - 1].end())
            best = min(best, key)
    return best[2], -best[3], best[0]


def _candidates(snap: Snapshot, line: str) -> list[int]:
    """Passage rows that may hold the line: BM25 on its terms, else (a line of only
    common words, "to be or not to be") the passages that align with it best."""
    terms = tokenize(line)
    if terms:
        k = FEW_CANDIDATES if len(set(terms)) > MANY_TERMS else CANDIDATES
        return snap.lexical.search(terms, k)[0].tolist()
    scored = []
    for row, p in enumerate(snap.passages):
        text = snap.docs[p.doc_id].text[p.start : p.end]
        scored.append((fuzz.partial_ratio(line, _plain(text)[0]), row))
    return [row for _, row in sorted(scored, reverse=True)[:CANDIDATES]]


def _paragraph(snap: Snapshot, row: int, start: int) -> int:
    """The paragraph (index) holding a position, from the passage's sentences."""
    p = snap.passages[row]
    for s in range(p.first_sentence, p.first_sentence + p.n_sentences):
        if int(snap.sent_span[s][1]) > start:
            return int(snap.sent_para[s])
    return int(snap.sent_para[p.first_sentence + p.n_sentences - 1])


def who_said(snap: Snapshot, line: str, limit: int = 5) -> WhoSaid:
    """Find where a remembered line comes from.

    Args:
        snap: The loaded index.
        line: The line as remembered (at least :data:`MIN_WORDS` words).
        limit: Most matches returned (a repost is a match of its own).

    Returns:
        The matches at least :data:`MIN_SIMILARITY` close, best first; reposts of the
        same text in other essays are listed too, each attributed as written there.
    """
    said = words(line)
    plain_line = " ".join(said)
    asked = stems(said)
    found: dict[tuple[str, int, int], Match] = {}
    for row in _candidates(snap, plain_line):
        p = snap.passages[row]
        doc = snap.docs[p.doc_id]
        end = min(len(doc.text), p.end + OVERLAP)
        rough = _align(plain_line, doc.text[p.start : end], p.start)
        if rough is None:
            continue
        span = _refine(asked, doc.text, *rough)
        got = words(doc.text[span[0] : span[1]])
        differ = span[2] or int(got != said)  # only an ending differs: not exact
        longer = max(len(asked), len(got), 1)
        similarity = 1 - differ / longer
        if similarity >= MIN_SIMILARITY and differ <= allowed_differences(longer):
            start, stop = span[0], span[1]
            excerpt = make_excerpt(doc, start, stop, _paragraph(snap, row, start), similarity)
            found[(doc.meta.doc_id, start, stop)] = Match(excerpt, similarity, differ)
    return WhoSaid(line, tuple(_best(list(found.values()), limit)))


def _best(matches: list[Match], limit: int) -> list[Match]:
    """Best first; one match per place (overlapping spans of one essay keep the best)."""
    kept: list[Match] = []
    for m in sorted(
        matches, key=lambda m: (-m.similarity, m.excerpt.essay.date or "", m.excerpt.start)
    ):
        e = m.excerpt
        if not any(k.excerpt.doc_id == e.doc_id and k.excerpt.start < e.end
                   and e.start < k.excerpt.end for k in kept):  # fmt: skip
            kept.append(m)
    return kept[:limit]
