"""A loaded index generation: the essays, the passage and sentence rows, the vectors and
BM25, as one :class:`Snapshot` that questions read (:mod:`bot.index.storage` reads it
from its files).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bot.index.ann import DenseIndex
from bot.index.essays import Library
from bot.index.lexical import LexicalIndex, tokenize, tokenize_many

#: An essay's year, as its date begins ("1993-01-20", "1993", "62" for Seneca's).
_YEAR = re.compile(r"^\D*(\d{1,4})")


@dataclass(frozen=True)
class PassageRow:
    """A passage of the library: which document, where, which sentences."""

    doc_id: str
    start: int
    end: int
    first_sentence: int  # global sentence row
    n_sentences: int
    paragraph: int


class PassageTable:
    """Passage rows, read from a memory-mapped array as they are used.

    Args:
        rows: One row per passage: document ordinal, start, end, first sentence row,
            sentence count, paragraph.
        doc_ids: Document ids by ordinal.
    """

    def __init__(self, rows: np.ndarray, doc_ids: list[str]) -> None:
        self.rows = rows
        self.doc_ids = doc_ids
        self._ordinal = {d: i for i, d in enumerate(doc_ids)}

    def __getitem__(self, i: int) -> PassageRow:
        d, start, end, first, n, para = self.rows[i].tolist()
        return PassageRow(self.doc_ids[d], start, end, first, n, para)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[PassageRow]:
        return (self[i] for i in range(len(self)))

    def essay_ordinals(self, rows: Any) -> np.ndarray:
        """The ordinal (place in library order) of each row's essay."""
        return self.rows[rows, 0]

    def sentence_ranges(self, rows: Any) -> tuple[np.ndarray, np.ndarray]:
        """Each row's first sentence row and its number of sentences."""
        table = self.rows[rows]
        return table[:, 3], table[:, 4]

    def sentences_of(self, doc_id: str) -> range:
        """The sentence rows of one essay, in order (empty for an essay with no passages):
        its passages' sentences are consecutive rows."""
        lo, hi = self.of(doc_id)
        if hi <= lo:
            return range(0)
        first, last = self[lo], self[hi - 1]
        return range(first.first_sentence, last.first_sentence + last.n_sentences)

    def of(self, doc_id: str) -> tuple[int, int]:
        """The rows of one essay's passages (lo, hi); rows are in library order."""
        ordinal = self._ordinal.get(doc_id)
        if ordinal is None:
            return 0, 0
        column = self.rows[:, 0]
        lo, hi = np.searchsorted(column, ordinal, "left"), np.searchsorted(column, ordinal, "right")
        return int(lo), int(hi)


class DocColumn:
    """Each sentence row's document id, from a memory-mapped column of ordinals."""

    def __init__(self, ordinals: np.ndarray, doc_ids: list[str]) -> None:
        self.ordinals = ordinals
        self.doc_ids = doc_ids

    def __getitem__(self, i: int) -> str:
        return self.doc_ids[int(self.ordinals[i])]

    def __len__(self) -> int:
        return len(self.ordinals)


@dataclass
class Snapshot:
    """One complete, loaded index generation: everything a query needs, in memory.

    Attributes:
        generation: The generation's name.
        manifest: What it was built from (model, chunker, document hashes).
        docs: Documents by id, in library order (each read when first used).
        passages: Passage rows; row number = FAISS id = BM25 row.
        sent_doc: Document id of each sentence row.
        sent_span: (start, end) of each sentence row in its document's text.
        sent_para: Paragraph index (into ``Document.paragraphs``) of each sentence row.
        sent_passage: Passage row of each sentence row.
        sent_vectors: Unit vectors of each sentence embedded on its own, one row each
            (float16, memory-mapped: read them as float32 with :meth:`sentence_vectors`).
        dense: The passage vectors behind the search interface (row = passage row):
            exact or an HNSW graph by the library's size (see :mod:`bot.index.ann`).
        lexical: BM25 over passage texts.
        extras: Per-generation precomputed results (e.g. essay summaries).
    """

    generation: str
    manifest: dict[str, Any]
    docs: Library
    passages: PassageTable
    sent_doc: DocColumn
    sent_span: np.ndarray
    sent_para: np.ndarray
    sent_passage: np.ndarray
    sent_vectors: np.ndarray
    dense: DenseIndex
    lexical: LexicalIndex
    extras: dict[str, Any] = field(default_factory=dict)
    live: str = ""  # the live generation when this one was loaded (itself, unless damaged)
    _tokens: dict[int, frozenset[str]] = field(default_factory=dict, init=False, repr=False)
    _authors: frozenset[str] | None = field(default=None, init=False, repr=False)
    _vocabulary: frozenset[str] | None = field(default=None, init=False, repr=False)
    _title_idf: dict[str, float] | None = field(default=None, init=False, repr=False)
    _title_terms: dict[str, frozenset[str]] | None = field(default=None, init=False, repr=False)
    _author_runs: dict[frozenset[str], list[tuple[int, int]]] = field(
        default_factory=dict, init=False, repr=False
    )

    def authors(self) -> frozenset[str]:
        """Every essay author of the library."""
        if self._authors is None:
            self._authors = frozenset(d.author for d in self.docs.essays() if d.author)
        return self._authors

    def vocabulary(self) -> frozenset[str]:
        """Every BM25 term of the library's passages, titles and authors, and the years
        its essays are dated (a reader's "the 1993 inaugural" names an essay by the date
        every answer shows)."""
        if self._vocabulary is None:
            words = set(self.lexical.terms())
            words.update(w for terms in self.title_terms().values() for w in terms)
            essays = list(self.docs.essays())
            authors = sorted({d.author for d in essays if d.author})
            words.update(w for terms in tokenize_many(authors) for w in terms)
            words.update(m for d in essays for m in _YEAR.findall(d.date or ""))
            self._vocabulary = frozenset(words)
        return self._vocabulary

    def author_runs(self, authors: frozenset[str]) -> list[tuple[int, int]]:
        """The passage rows of these authors' essays as runs of consecutive rows (lo, hi),
        in library order: an author's essays usually sit together, and a run is scanned
        without copying its vectors. Kept per snapshot; found in one vectorised pass
        over the passages (a walk over 10,000 essays cost 100 ms)."""
        runs = self._author_runs.get(authors)
        if runs is None:
            by_doc = [self.docs.records[d].meta.author in authors for d in self.passages.doc_ids]
            mask = np.asarray(by_doc, dtype=bool)[self.passages.rows[:, 0]]
            edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.view(np.int8), [0]))))
            runs = list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))
            if len(self._author_runs) > 64:
                self._author_runs.clear()
            self._author_runs[authors] = runs
        return runs

    def title_terms(self) -> dict[str, frozenset[str]]:
        """Each essay's title as BM25 terms, by essay id."""
        if self._title_terms is None:
            ids = list(self.docs)
            titles = tokenize_many([self.docs.records[d].meta.title for d in ids])
            self._title_terms = {d: frozenset(t) for d, t in zip(ids, titles, strict=True)}
        return self._title_terms

    def title_idf(self) -> dict[str, float]:
        """How rare each title word is among the library's titles: log(titles / titles
        with the word), 0 for a word every title has."""
        if self._title_idf is None:
            df: dict[str, int] = {}
            for terms in self.title_terms().values():
                for word in terms:
                    df[word] = df.get(word, 0) + 1
            n = len(self.docs)
            self._title_idf = {w: float(np.log(n / k)) for w, k in df.items()}
        return self._title_idf

    def sentence_vectors(self, rows: Any) -> np.ndarray:
        """Some sentences' vectors as float32 (rows: an index array or a slice)."""
        return np.asarray(self.sent_vectors[rows], dtype=np.float32)

    def sentence_tokens(self, row: int) -> frozenset[str]:
        """A sentence's BM25 terms (computed once per snapshot, on first use)."""
        toks = self._tokens.get(row)
        if toks is None:
            toks = self._tokens[row] = frozenset(tokenize(self.sentence_text(row)))
        return toks

    def sentence_text(self, row: int) -> str:
        """The exact text of a sentence row."""
        return self.sentence_texts(np.array([row]))[0]

    def sentence_texts(self, rows: np.ndarray) -> list[str]:
        """The exact texts of sentence rows, each essay's text looked up once (a passage's
        sentences share one: choosing quotes reads them for 20 passages a question)."""
        ordinals = self.sent_doc.ordinals[rows].tolist()
        texts = {o: self.docs.text(self.sent_doc.doc_ids[o]) for o in set(ordinals)}
        spans = self.sent_span[rows].tolist()
        return [texts[o][s:e] for o, (s, e) in zip(ordinals, spans, strict=True)]

    def passage_counts(self) -> dict[str, int]:
        """Passages per document."""
        per = np.bincount(self.passages.rows[:, 0], minlength=len(self.passages.doc_ids))
        return dict(zip(self.passages.doc_ids, per.tolist(), strict=True))
