"""A loaded index generation: the essays, the passage and sentence rows, the vectors and
BM25, as one :class:`Snapshot` that questions read; and the files it is read from.

The files of one generation (``generations/<name>/``; :mod:`bot.index.generations` writes
them beside the live one and switches them in)::

    manifest.json           what it was built from, the files' sizes and checksums, each
                            essay's checksums (text, paragraphs, metadata)
    library.sqlite          each essay's metadata, text and paragraphs
    passage_rows.npy        one row per passage: essay ordinal, span, sentences, paragraph
    sentence_rows.npy       one row per sentence: essay ordinal, span, paragraph, passage
    sentences.npy           each sentence's vector (float16)
    passages.faiss          the passage vectors, behind :class:`bot.index.ann.DenseIndex`
    bm25/                   BM25 over the passages' texts
    extras.json             per-essay results computed at index time (key points)
"""

from __future__ import annotations

import hashlib
import json
import logging
import mmap
import re
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bot.index import ann
from bot.index.ann import DenseIndex
from bot.index.chunks import DocChunks
from bot.index.lexical import LexicalIndex, tokenize, tokenize_many
from bot.ingest.documents import (
    Document,
    DocumentError,
    EssayMeta,
    Paragraph,
    Role,
    read_document,
)

log = logging.getLogger(__name__)

#: 2: passage and sentence rows in memory-mapped .npy files. 3: an HNSW graph holds 8-bit
#: codes and re-ranks with the exact vectors. 4: the manifest holds each essay's checksums
#: (text, paragraphs, metadata), checked as an essay is read (older formats are rebuilt by
#: `index`, reusing the cached vectors: served unchecked, a damaged byte could quote words
#: the author never wrote).
FORMAT_VERSION = 4
READABLE_FORMATS = (4,)


class DamagedEssay(ValueError):
    """An essay's text in a generation is not what was written there, and the library
    file no longer holds it either: the generation must not be read (the engine passes
    over it to an intact one)."""

    def __init__(self, generation: str, doc_id: str) -> None:
        super().__init__(f"essay {doc_id!r} is damaged in index generation {generation}")
        self.generation = generation


def digest(text: str) -> str:
    """The checksum an essay's stored text, paragraphs or metadata are checked against."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _meta_json(r: tuple[Any, ...]) -> str:
    return json.dumps(list(r), ensure_ascii=False)


class OlderFormat(ValueError):
    """A generation written by another version of the index format (rebuilt, reusing the
    cached vectors, by the next `index`)."""


@dataclass(frozen=True)
class PassageRow:
    """A passage of the library: which document, where, which sentences."""

    doc_id: str
    start: int
    end: int
    first_sentence: int  # global sentence row
    n_sentences: int
    paragraph: int


@dataclass(frozen=True)
class EssayRecord:
    """What a generation records of an essay besides its text and paragraphs."""

    meta: EssayMeta
    content_hash: str
    path: str
    extra_json: str  # the front matter's other fields, parsed when the essay is read


#: Full documents a snapshot keeps loaded (the ones recent questions quoted from).
DOCS_KEPT = 512
#: An essay's year, as its date begins ("1993-01-20", "1993", "62" for Seneca's).
_YEAR = re.compile(r"^\D*(\d{1,4})")


class Library(Mapping[str, Document]):
    """The essays of a generation by id: metadata in memory, each essay's text and
    paragraphs read from the generation's database when first needed.

    A 10,000-essay library holds 300 MB of text; reading it all would cost a cold start
    seconds for the few essays a question quotes.

    Args:
        db: The generation's database, open read-only (kept open: a writer may delete
            the generation's folder while this snapshot still answers from it).
        records: What the generation records of each essay, in library order.
    """

    def __init__(
        self,
        db: sqlite3.Connection,
        records: dict[str, EssayRecord],
        checks: dict[str, list[str]],
        generation: str,
    ) -> None:
        self.db = db
        self.records = records
        self.checks = checks
        self.generation = generation
        self._kept: OrderedDict[str, Document] = OrderedDict()
        self._texts: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def __getitem__(self, doc_id: str) -> Document:
        doc = self._kept.get(doc_id)  # the common case, without the lock
        if doc is not None:
            return doc
        with self._lock:
            doc = self._kept.get(doc_id)
            if doc is not None:
                return doc
            r = self.records[doc_id]
            text, paragraphs = self._stored(doc_id, "text, paragraphs", (0, 1))
            doc = Document(
                meta=r.meta,
                text=text,
                paragraphs=_paragraphs_from_json(paragraphs),
                content_hash=r.content_hash,
                path=r.path,
                extra=json.loads(r.extra_json),
            )
            self._kept[doc_id] = doc
            if len(self._kept) > DOCS_KEPT:
                self._kept.popitem(last=False)
            return doc

    def text(self, doc_id: str) -> str:
        """An essay's text alone (choosing quotes reads sentences of many essays; only
        the chosen quotes need the essay's paragraphs)."""
        doc = self._kept.get(doc_id)
        if doc is not None:
            return doc.text
        text = self._texts.get(doc_id)
        if text is None:
            with self._lock:
                (text,) = self._stored(doc_id, "text", (0,))
                self._texts[doc_id] = text
                if len(self._texts) > DOCS_KEPT:
                    self._texts.popitem(last=False)
        return text

    def _stored(self, doc_id: str, columns: str, which: tuple[int, ...]) -> tuple[str, ...]:
        """An essay's stored columns, checked against the checksums written with them
        (once per essay read, not per question). A damaged copy is replaced by the
        library file when that still holds what was indexed (the same content hash);
        else :class:`DamagedEssay`."""
        try:
            row = self.db.execute(f"SELECT {columns} FROM docs WHERE doc_id = ?", (doc_id,))
            values = tuple(row.fetchone())
            if all(digest(v) == self.checks[doc_id][i] for v, i in zip(values, which, strict=True)):
                return values
        except (sqlite3.Error, TypeError, KeyError, UnicodeError):  # unreadable: damage too
            pass
        log.warning("essay %s is damaged in index generation %s", doc_id, self.generation)
        doc = self._from_disk(doc_id)
        return tuple((doc.text, _paragraphs_json(doc))[i] for i in which)

    def _from_disk(self, doc_id: str) -> Document:
        """The essay read again from its library file, if that still holds what was
        indexed (its content hash and text checksum); else :class:`DamagedEssay`."""
        r = self.records[doc_id]
        try:
            doc = read_document(Path(r.path))
        except DocumentError:
            raise DamagedEssay(self.generation, doc_id) from None
        if doc.content_hash != r.content_hash or digest(doc.text) != self.checks[doc_id][0]:
            raise DamagedEssay(self.generation, doc_id)
        return doc

    def essays(self) -> list[EssayMeta]:
        """Every essay's metadata, in library order."""
        return [r.meta for r in self.records.values()]

    def __iter__(self) -> Iterator[str]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self.records


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


def _paragraphs_json(doc: Document) -> str:
    return json.dumps([list(p.__dict__.values()) for p in doc.paragraphs])


def _paragraphs_from_json(raw: str) -> tuple[Paragraph, ...]:
    return tuple(Paragraph(s, e, n, Role(role), *rest) for s, e, n, role, *rest in json.loads(raw))


_SCHEMA = """
CREATE TABLE docs (doc_id TEXT PRIMARY KEY, ord INTEGER, title TEXT, author TEXT,
    date TEXT, source TEXT, url TEXT, via TEXT, text TEXT, content_hash TEXT,
    path TEXT, extra TEXT, paragraphs TEXT);
"""


def write_rows(folder: Path, chunks: list[DocChunks]) -> dict[str, list[str]]:
    """Documents in SQLite; passage and sentence rows (numbers that match the vector
    files) as arrays, memory-mapped when loaded.

    Returns:
        Each essay's checksums (text, paragraphs, metadata), for the manifest.
    """
    passage_rows: list[tuple[int, ...]] = []
    sentence_rows: list[tuple[int, ...]] = []
    checks: dict[str, list[str]] = {}
    db = sqlite3.connect(folder / "library.sqlite")
    try:
        db.executescript(_SCHEMA)
        for order, c in enumerate(chunks):
            d, m = c.doc, c.doc.meta
            meta = (m.doc_id, m.title, m.author, m.date, m.source, m.url, m.via,
                    d.content_hash, d.path, json.dumps(d.extra, default=str))  # fmt: skip
            paragraphs = _paragraphs_json(d)
            db.execute(
                "INSERT INTO docs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (meta[0], order, *meta[1:7], d.text, *meta[7:], paragraphs),
            )
            checks[m.doc_id] = [digest(d.text), digest(paragraphs), digest(_meta_json(meta))]
            for p in c.passages:
                pid, first = len(passage_rows), len(sentence_rows)
                for si in p.sentences:
                    s = c.sentences[si]
                    sentence_rows.append((order, s.start, s.end, s.paragraph, pid))
                passage_rows.append((order, p.start, p.end, first, len(p.sentences), p.paragraph))
        db.commit()
    finally:
        db.close()
    np.save(folder / "passage_rows.npy", np.array(passage_rows, dtype=np.int64).reshape(-1, 6))
    np.save(folder / "sentence_rows.npy", np.array(sentence_rows, dtype=np.int64).reshape(-1, 5))
    return checks


def write_vectors(folder: Path, chunks: list[DocChunks], dim: int) -> dict[str, int]:
    """The dense index of passage vectors and the sentence vectors; returns their counts."""
    p_vecs = [v for c in chunks for v in c.passage_vectors]
    s_vecs = [v for c in chunks for v in c.sentence_vectors]
    passages = np.vstack(p_vecs).astype(np.float32) if p_vecs else np.zeros((0, dim), np.float32)
    # Sentence vectors only rank a passage's few sentences against each other: float16
    # halves them on disk and in memory (eval figures unchanged; bench/README.md).
    sentences = np.vstack(s_vecs).astype(np.float16) if s_vecs else np.zeros((0, dim), np.float16)
    ann.build(passages).save(folder / "passages.faiss")
    np.save(folder / "sentences.npy", sentences)
    return {"passages": len(passages), "sentences": len(sentences)}


def _random_access(array: np.ndarray) -> np.ndarray:
    """A memory-mapped array read a few rows at a time, anywhere: no read-ahead (each
    question reads a few hundred scattered sentence vectors, not the pages after them)."""
    mapped = getattr(array, "_mmap", None)
    if mapped is not None and hasattr(mmap, "MADV_RANDOM"):
        mapped.madvise(mmap.MADV_RANDOM)
    return array.view(np.ndarray)


def read_generation(folder: Path, name: str) -> Snapshot:
    """Load one generation's files (their integrity is the caller's to check first).

    Raises:
        OlderFormat: Another version of the index format wrote it.
    """
    manifest = json.loads((folder / "manifest.json").read_text())
    if manifest.get("format") not in READABLE_FORMATS:
        raise OlderFormat(f"is in format {manifest.get('format')}, not {FORMAT_VERSION}")
    db = sqlite3.connect(
        f"file:{folder / 'library.sqlite'}?mode=ro", uri=True, check_same_thread=False
    )
    checks = manifest["essays"]
    records = {}
    for row in db.execute(
        "SELECT doc_id, title, author, date, source, url, via, content_hash, path, extra"
        " FROM docs ORDER BY ord"
    ):
        d, title, author, date, source, url, via, content, path, extra = row
        if d not in checks or digest(_meta_json(row)) != checks[d][2]:
            raise ValueError(f"essay {d!r}'s metadata is not what was written")
        records[d] = EssayRecord(EssayMeta(d, title, author, date, source, url, via), content,
                                 path, extra)  # fmt: skip
    if len(records) != len(checks):
        raise ValueError("essays are missing from library.sqlite")
    doc_ids = list(records)
    # Plain arrays over the mapped files: a memmap object per row read costs microseconds.
    passages = np.load(folder / "passage_rows.npy", mmap_mode="r").view(np.ndarray)
    sentences = np.load(folder / "sentence_rows.npy", mmap_mode="r").view(np.ndarray)
    return Snapshot(
        generation=name,
        manifest=manifest,
        docs=Library(db, records, checks, name),
        passages=PassageTable(passages, doc_ids),
        sent_doc=DocColumn(sentences[:, 0], doc_ids),
        sent_span=sentences[:, 1:3],
        sent_para=sentences[:, 3],
        sent_passage=sentences[:, 4],
        sent_vectors=_random_access(np.load(folder / "sentences.npy", mmap_mode="r")),
        dense=ann.load(folder / "passages.faiss"),
        lexical=LexicalIndex.load(folder / "bm25", len(passages)),
        extras=json.loads((folder / "extras.json").read_text()),
    )
