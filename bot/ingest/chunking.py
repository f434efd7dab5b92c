"""Whole sentences and passages, as offsets into a document's text.

Sentences come from pysbd (rule based: "U.S.", "Feb 3, 2026", "1.Russia" stay whole), are
located in the paragraph by search so offsets are exact, and lose list markers ("•", "1.").
Passages group consecutive sentences of one block (same attribution, adjacent) up to
:data:`MAX_PASSAGE_WORDS` words, well under MiniLM's 256-token window.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from bot.ingest.cleaning import CLEANING_VERSION
from bot.ingest.model import Document, content_hash

CHUNKER_VERSION = f"c5-{CLEANING_VERSION}"
MAX_PASSAGE_WORDS = 110
MIN_PASSAGE_WORDS = 45
MAX_SENTENCE_WORDS = 90

_MARKER = re.compile(r"^(?:[•·▪◦‣∙*–—-]\s*|\d{1,2}[.)]\s*(?=[A-Z“\"‘'])|\d{1,2}[.)]\s+)")
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Sentence:
    """A sentence: offsets into the document text and the paragraph it belongs to."""

    start: int
    end: int
    paragraph: int  # index into Document.paragraphs


@dataclass(frozen=True)
class Passage:
    """Consecutive sentences of one block, the unit that is embedded and searched."""

    start: int
    end: int
    sentences: tuple[int, ...]  # indices into the document's sentence list
    paragraph: int  # index of the first sentence's paragraph
    header: str = ""  # context for the embedding only: who speaks, when it is not the author

    def embed_text(self, doc_text: str, sentences: list[Sentence]) -> str:
        """The text that is embedded: a context header, then the sentences joined by spaces."""
        body = " ".join(doc_text[sentences[i].start : sentences[i].end] for i in self.sentences)
        return self.header + body


def context_header(doc: Document, paragraph: int) -> str:
    """A short lead-in naming who speaks when it is not the essay's author (a quoted
    speaker, a reader comment, a reposting blog's introduction); empty otherwise."""
    para = doc.paragraphs[paragraph]
    note = f" ({para.note})" if para.note else ""
    if para.role == "comment":
        return f"Reader comment{' by ' + para.author if para.author else ''}: "
    if para.quoted_by:
        return f"{para.author}{note}, quoted by {para.quoted_by}: "
    if para.author != doc.meta.author:
        return f"{para.author or 'Unknown'}{note}: "
    return ""


@lru_cache(maxsize=1)
def _segmenter():  # type: ignore[no-untyped-def]
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


def _pieces(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Split an over-long sentence at word boundaries into pieces of similar size."""
    words = list(re.finditer(r"\S+", text[start:end]))
    if len(words) <= MAX_SENTENCE_WORDS:
        return [(start, end)]
    n = -(-len(words) // MAX_SENTENCE_WORDS)
    size = -(-len(words) // n)
    out = []
    for i in range(0, len(words), size):
        chunk = words[i : i + size]
        out.append((start + chunk[0].start(), start + chunk[-1].end()))
    return out


def _for_segmenter(text: str) -> str:
    """The text as pysbd reads it best, character for character (offsets stay exact).

    A line break inside a paragraph is a space: hard-wrapped text breaks lines
    mid-sentence. A double hyphen is a dash: pysbd reads text between two "--" as one
    aside and never ends a sentence inside it (Lincoln's "--we can not hallow--this
    ground." would swallow a whole paragraph).
    """
    return text.replace("\n", " ").replace("--", "——")


#: pysbd reads at most this many characters at a time: its cost grows faster than the
#: text, and a 1 MB "paragraph" (200,000 one-word lines) would take hours.
SEGMENT_CHARS = 5000


def _raw_spans(text: str) -> Iterator[tuple[int, int]]:
    """pysbd's sentences of a paragraph as (start, end) offsets, read window by window.

    Each window's last sentence may be cut by the window's end, so the next window starts
    there; a window with no sentence boundary at all is cut at its last space (the piece
    is then split further by :func:`_pieces`).
    """
    seg = _segmenter()
    pos = 0
    while pos < len(text):
        window = text[pos : pos + SEGMENT_CHARS]
        final = pos + SEGMENT_CHARS >= len(text)
        spans, cursor = [], 0
        for raw in seg.segment(window):
            piece = raw.strip()
            found = window.find(piece, cursor) if piece else -1
            if found >= 0:  # else pysbd normalised something: skip it
                cursor = found + len(piece)
                spans.append((pos + found, pos + cursor))
        if final:
            yield from spans
            return
        if len(spans) > 1:
            yield from spans[:-1]
            pos = spans[-1][0]
            continue
        cut = window.rfind(" ") if " " in window.strip() else -1
        cut = cut if cut > 0 else len(window)
        if window[:cut].strip():
            yield pos + len(window) - len(window.lstrip()), pos + len(window[:cut].rstrip())
        pos += cut


def sentences_of(text: str) -> list[str]:
    """The sentences of a short text (a chat message), as the library's are split."""
    return [text[s:e] for s, e in _raw_spans(_for_segmenter(text))]


def split_sentences(doc: Document) -> list[Sentence]:
    """Every quotable sentence of a document, in order.

    Sentence boundaries come from the text, not its layout: a paragraph's line breaks are
    read as spaces.

    Fragments are skipped: a piece with fewer than three words and no final punctuation
    (a stray "JL" initial) is not a sentence anyone should be quoted by.
    """
    out: list[Sentence] = []
    for p_index, para in enumerate(doc.paragraphs):
        text = _for_segmenter(doc.text[para.start : para.end])
        for s, e in _raw_spans(text):
            marker = _MARKER.match(text, s, e)
            if marker:
                s = marker.end()
            while s < e and text[s].isspace():
                s += 1
            chunk = text[s:e]
            words = _WORD.findall(chunk)
            if not words or (len(words) < 3 and not re.search(r"[.!?…]['\"”’)]*$", chunk)):
                continue
            for a, b in _pieces(text, s, e):
                out.append(Sentence(para.start + a, para.start + b, p_index))
    return out


def make_passages(doc: Document, sentences: list[Sentence]) -> list[Passage]:
    """Group sentences into passages that never cross a block (change of author or gap)."""
    passages: list[Passage] = []
    current: list[int] = []
    words = 0

    def flush() -> None:
        nonlocal current, words
        if current:
            first, last = sentences[current[0]], sentences[current[-1]]
            header = context_header(doc, first.paragraph)
            passages.append(Passage(first.start, last.end, tuple(current), first.paragraph, header))
        current, words = [], 0

    for i, sent in enumerate(sentences):
        n = len(doc.text[sent.start : sent.end].split())
        if current:
            prev = sentences[current[-1]]
            same_block = (
                doc.paragraphs[prev.paragraph].block == doc.paragraphs[sent.paragraph].block
            )
            new_para = prev.paragraph != sent.paragraph
            if (
                not same_block
                or words + n > MAX_PASSAGE_WORDS
                or (new_para and words >= MIN_PASSAGE_WORDS)
            ):
                flush()
        current.append(i)
        words += n
    flush()
    return passages


def passage_hash(text: str, spans: list[tuple[int, int]]) -> str:
    """What an embedding depends on: the passage text, its sentence spans, the chunker."""
    return content_hash(f"{CHUNKER_VERSION}\x00{text}\x00{spans}")


def sentence_spans(passage: Passage, sentences: list[Sentence]) -> list[tuple[int, int]]:
    """Each sentence's span inside :meth:`Passage.embed_text`."""
    spans = []
    pos = len(passage.header)
    for i in passage.sentences:
        n = sentences[i].end - sentences[i].start
        spans.append((pos, pos + n))
        pos += n + 1
    return spans
