"""Index generations on disk: written beside the live one, switched in with a rename.

Layout of ``INDEX_DIR``::

    CURRENT                 name of the live generation (replaced atomically)
    generations/<name>/     manifest.json, library.sqlite, passages.faiss,
                            sentences.npy, bm25/ -- complete or absent, never half-written
    embeddings.sqlite       the embedding cache shared by all generations
    audit.sqlite            who changed the library, when
    query-model/            the model's checked ONNX export for questions (bot/query_model.py)
    .lock                   serialises writers (filelock)

Readers open ``CURRENT`` and the generation it names; a generation is only ever named
after it is complete, and the previous one is kept so that a reader that just read the old
name can still open it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mmap
import os
import re
import shutil
import sqlite3
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from bot.index.chunks import DocChunks
from bot.index.lexical import LexicalIndex, tokenize, tokenize_many
from bot.ingest.chunking import CHUNKER_VERSION
from bot.ingest.documents import Document, Paragraph

#: 2: passage and sentence rows in memory-mapped .npy files. 3: an HNSW graph holds 8-bit
#: codes and re-ranks with the exact vectors (format 2 is still read; `index` rewrites it).
FORMAT_VERSION = 3
READABLE_FORMATS = (2, 3)
_GEN_NAME = re.compile(r"^(\d{6})-\d{8}T")
log = logging.getLogger(__name__)
#: Up to this many passages a question scans every passage vector (exact, FAISS flat);
#: past it they go into an HNSW graph. bench/bench_scale.py measures both (README table).
EXACT_UP_TO = 100_000
HNSW_M = 48  # graph neighbours per vector
HNSW_EF_CONSTRUCTION = 200  # candidates weighed while linking a vector in
HNSW_EF_SEARCH = 768  # candidates weighed per question (recall@50 0.99 vs exact: bench)
#: The graph walks 8-bit codes (a quarter of the memory a step reads) and returns this many
#: times the passages asked for, re-ranked by their exact vectors: at 10,000 essays recall@50
#: 0.994 in 3 ms a question, where a graph of the float vectors took 7 ms for 0.991.
HNSW_REFINE = 2.0
KEEP_GENERATIONS = 2


class OlderFormat(ValueError):
    """A generation written by another version of the index format (rebuilt, reusing the
    cached vectors, by the next `index`)."""


class IndexMissing(RuntimeError):
    """No complete index generation exists yet."""


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
class DocMeta:
    """An essay's metadata: all of :class:`Document` but its text and paragraphs."""

    doc_id: str
    title: str
    author: str | None
    date: str | None
    source: str | None
    url: str | None
    via: str | None
    content_hash: str
    path: str
    extra_json: str  # the front matter's other fields, parsed when the essay is read


#: Full documents a snapshot keeps loaded (the ones recent questions quoted from).
DOCS_KEPT = 512


class Library(Mapping[str, Document]):
    """The essays of a generation by id: metadata in memory, each essay's text and
    paragraphs read from the generation's database when first needed.

    A 10,000-essay library holds 300 MB of text; reading it all would cost a cold start
    seconds for the few essays a question quotes.

    Args:
        db: The generation's database, open read-only (kept open: a writer may delete
            the generation's folder while this snapshot still answers from it).
        meta: Every essay's metadata, in library order.
    """

    def __init__(self, db: sqlite3.Connection, meta: dict[str, DocMeta]) -> None:
        self.db = db
        self.meta = meta
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
            m = self.meta[doc_id]
            text, paragraphs = self.db.execute(
                "SELECT text, paragraphs FROM docs WHERE doc_id = ?", (doc_id,)
            ).fetchone()
            doc = Document(
                doc_id=m.doc_id, title=m.title, author=m.author, date=m.date, source=m.source,
                url=m.url, via=m.via, text=text, paragraphs=_paragraphs_from_json(paragraphs),
                content_hash=m.content_hash, path=m.path, extra=json.loads(m.extra_json),
            )  # fmt: skip
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
                row = self.db.execute("SELECT text FROM docs WHERE doc_id = ?", (doc_id,))
                text = self._texts[doc_id] = row.fetchone()[0]
                if len(self._texts) > DOCS_KEPT:
                    self._texts.popitem(last=False)
        return text

    def __iter__(self) -> Iterator[str]:
        return iter(self.meta)

    def __len__(self) -> int:
        return len(self.meta)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self.meta


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
        dense: FAISS ``IndexIDMap`` over passage vectors: a flat index, or an HNSW graph
            past :data:`EXACT_UP_TO` passages (see :func:`dense_index`).
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
    dense: Any
    lexical: LexicalIndex
    extras: dict[str, Any] = field(default_factory=dict)
    live: str = ""  # the live generation when this one was loaded (itself, unless damaged)
    _tokens: dict[int, frozenset[str]] = field(default_factory=dict, init=False, repr=False)
    _passage_vectors: np.ndarray | None = field(default=None, init=False, repr=False)
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
            self._authors = frozenset(d.author for d in self.docs.meta.values() if d.author)
        return self._authors

    def vocabulary(self) -> frozenset[str]:
        """Every BM25 term of the library's passages, titles and authors."""
        if self._vocabulary is None:
            words = set(self.lexical.retriever.vocab_dict) if self.lexical.size else set()
            words.update(w for terms in self.title_terms().values() for w in terms)
            authors = sorted({d.author for d in self.docs.meta.values() if d.author})
            words.update(w for terms in tokenize_many(authors) for w in terms)
            self._vocabulary = frozenset(words)
        return self._vocabulary

    def author_runs(self, authors: frozenset[str]) -> list[tuple[int, int]]:
        """The passage rows of these authors' essays as runs of consecutive rows (lo, hi),
        in library order: an author's essays usually sit together, and a run is scanned
        without copying its vectors. Kept per snapshot; found in one vectorised pass
        over the passages (a walk over 10,000 essays cost 100 ms)."""
        runs = self._author_runs.get(authors)
        if runs is None:
            by_doc = [self.docs.meta[d].author in authors for d in self.passages.doc_ids]
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
            ids = list(self.docs.meta)
            titles = tokenize_many([self.docs.meta[d].title for d in ids])
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

    @property
    def passage_vectors(self) -> np.ndarray:
        """The passage vectors as a matrix: a view of the FAISS index's own storage (no
        copy: at 650,000 passages a copy would be another gigabyte)."""
        if self._passage_vectors is None:
            inner = _exact_storage(self.dense)
            n, dim = len(self.passages), inner.d
            view = faiss.rev_swig_ptr(inner.get_xb(), n * dim) if n else np.zeros(0, np.float32)
            self._passage_vectors = np.asarray(view).reshape(n, dim)
        return self._passage_vectors

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
    return tuple(Paragraph(*row) for row in json.loads(raw))


def current_generation(index_dir: Path) -> str | None:
    """The name of the live generation, or None (no index, or a damaged pointer)."""
    try:
        name = (index_dir / "CURRENT").read_text(encoding="ascii").strip()
    except (OSError, ValueError):
        return None
    if not _GEN_NAME.match(name) or "/" in name:
        return None
    return name if (index_dir / "generations" / name / "manifest.json").is_file() else None


def _manifest(folder: Path) -> dict[str, Any] | None:
    """A generation folder's manifest, or None when it is missing or unreadable."""
    try:
        data = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_manifest(index_dir: Path) -> dict[str, Any] | None:
    """The live generation's manifest, or None."""
    name = current_generation(index_dir)
    return None if name is None else _manifest(index_dir / "generations" / name)


def _checksums(folder: Path) -> dict[str, list[Any]]:
    """Size and SHA-256 of every file of a generation, by path inside it."""
    out: dict[str, list[Any]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel != "manifest.json":
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            out[rel] = [path.stat().st_size, digest]
    return out


def intact(folder: Path, full: bool = False) -> bool:
    """Whether a generation's files are as written: their sizes (cheap, on every load)
    and, with `full`, their checksums (what `index` checks before trusting it)."""
    manifest = _manifest(folder)
    if manifest is None:
        return False
    for rel, (size, digest) in (manifest.get("files") or {}).items():
        path = folder / rel
        try:
            if path.stat().st_size != size:
                return False
            if full and hashlib.sha256(path.read_bytes()).hexdigest() != digest:
                return False
        except OSError:
            return False
    return True


StageHook = Callable[[str], None]


def no_stage(stage: str) -> None:
    """The default stage hook: nothing to report."""


def write_generation(
    index_dir: Path,
    chunks: list[DocChunks],
    manifest: dict[str, Any],
    dim: int,
    extras: dict[str, Any] | None = None,
    on_stage: StageHook | None = None,
) -> str:
    """Write a new complete generation and make it the live one.

    The generation is written in a hidden folder, renamed into ``generations/`` when
    complete, and only then named in ``CURRENT``, so a crash at any point leaves the live
    generation as it was.

    Args:
        index_dir: The index folder.
        chunks: The documents with their vectors.
        manifest: What the generation is built from; completed and stored with it.
        dim: The embedding width.
        extras: JSON-serialisable precomputed results, stored in ``extras.json``.
        on_stage: Called with each stage's name as it starts (progress reports; the
            crash test stops the process there).

    Returns:
        The new generation's name.
    """
    stage = on_stage or no_stage
    gens = index_dir / "generations"
    gens.mkdir(parents=True, exist_ok=True)
    name = _new_generation_name(gens)
    tmp = index_dir / f".tmp-{name}"
    tmp.mkdir()
    stage("write-sqlite")
    _write_rows(tmp, chunks)
    stage("write-vectors")
    counts = _write_vectors(tmp, chunks, dim)
    stage("write-bm25")
    texts = [text for c in chunks for text in c.texts]
    LexicalIndex.build(texts).save(tmp / "bm25")
    (tmp / "extras.json").write_text(json.dumps(extras or {}))
    stage("write-manifest")
    counts["docs"] = len(chunks)
    manifest = {**manifest, "files": _checksums(tmp)}
    _write_manifest(tmp, manifest, name, dim, counts)
    _fsync_dir(tmp)
    stage("rename")
    os.rename(tmp, gens / name)
    _fsync_dir(gens)
    stage("switch")
    pointer = index_dir / f".CURRENT.{name}"
    pointer.write_text(name + "\n")
    os.replace(pointer, index_dir / "CURRENT")
    _fsync_dir(index_dir)
    stage("prune")
    prune(index_dir)
    return name


def _new_generation_name(gens: Path) -> str:
    """Sortable and unique: a sequence number, the time, and a random suffix."""
    numbers = [int(m.group(1)) for p in gens.iterdir() if (m := _GEN_NAME.match(p.name))]
    stamp = time.strftime("%Y%m%dT%H%M%S")
    return f"{max(numbers, default=0) + 1:06d}-{stamp}-{uuid.uuid4().hex[:6]}"


_SCHEMA = """
CREATE TABLE docs (doc_id TEXT PRIMARY KEY, ord INTEGER, title TEXT, author TEXT,
    date TEXT, source TEXT, url TEXT, via TEXT, text TEXT, content_hash TEXT,
    path TEXT, extra TEXT, paragraphs TEXT);
"""


def _write_rows(folder: Path, chunks: list[DocChunks]) -> None:
    """Documents in SQLite; passage and sentence rows (numbers that match the vector
    files) as arrays, memory-mapped when loaded."""
    passage_rows: list[tuple[int, ...]] = []
    sentence_rows: list[tuple[int, ...]] = []
    db = sqlite3.connect(folder / "library.sqlite")
    try:
        db.executescript(_SCHEMA)
        for order, c in enumerate(chunks):
            d = c.doc
            db.execute(
                "INSERT INTO docs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    d.doc_id, order, d.title, d.author, d.date, d.source, d.url, d.via, d.text,
                    d.content_hash, d.path, json.dumps(d.extra, default=str),
                    _paragraphs_json(d),
                ),
            )  # fmt: skip
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


def _write_vectors(folder: Path, chunks: list[DocChunks], dim: int) -> dict[str, int]:
    """The FAISS index of passage vectors and the sentence vectors; returns their counts."""
    p_vecs = [v for c in chunks for v in c.passage_vectors]
    s_vecs = [v for c in chunks for v in c.sentence_vectors]
    passages = np.vstack(p_vecs).astype(np.float32) if p_vecs else np.zeros((0, dim), np.float32)
    # Sentence vectors only rank a passage's few sentences against each other: float16
    # halves them on disk and in memory (eval figures unchanged; bench/README.md).
    sentences = np.vstack(s_vecs).astype(np.float16) if s_vecs else np.zeros((0, dim), np.float16)
    index = faiss.IndexIDMap(dense_index(len(passages), dim))
    if len(passages):
        threads = faiss.omp_get_max_threads()  # questions run FAISS on one thread
        faiss.omp_set_num_threads(os.cpu_count() or 1)  # building a graph uses them all
        try:
            index.train(passages)  # the 8-bit codes' ranges (nothing to learn for flat)
            index.add_with_ids(passages, np.arange(len(passages), dtype=np.int64))
        finally:
            faiss.omp_set_num_threads(threads)
    faiss.write_index(index, str(folder / "passages.faiss"))
    np.save(folder / "sentences.npy", sentences)
    return {"passages": len(passages), "sentences": len(sentences)}


def search_kind(n_passages: int) -> str:
    """How questions will search a library this size: "exact" or "hnsw"."""
    return "exact" if n_passages <= EXACT_UP_TO else "hnsw"


def describe_search(kind: str, n_passages: int) -> str:
    """One line for `index`: how questions search the passage vectors, and why."""
    if kind == "hnsw":
        return (f"HNSW graph over {n_passages:,} passages (approximate: 8-bit codes, M {HNSW_M}, "
                f"efSearch {HNSW_EF_SEARCH}, re-ranked by the exact vectors), chosen past "
                f"{EXACT_UP_TO:,} passages")  # fmt: skip
    return f"exact scan of {n_passages:,} passages (FAISS flat), up to {EXACT_UP_TO:,}"


def dense_index(n_passages: int, dim: int) -> Any:
    """The FAISS index for a library of this size: exact up to :data:`EXACT_UP_TO`
    passages, an HNSW graph (approximate, a few milliseconds at any size) past it, walked
    on 8-bit codes with its best :data:`HNSW_REFINE` x k re-ranked by the exact vectors."""
    if search_kind(n_passages) == "exact":
        return faiss.IndexFlatIP(dim)
    qtype: Any = faiss.ScalarQuantizer.QT_8bit  # an enum value; the stubs want an object
    graph = faiss.IndexHNSWSQ(dim, qtype, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    graph.hnsw.efSearch = HNSW_EF_SEARCH
    refined = faiss.IndexRefineFlat(graph)  # keeps the exact vectors beside the codes
    refined.k_factor = HNSW_REFINE
    return refined


def _exact_storage(index: Any) -> Any:
    """The flat index holding the exact passage vectors inside a dense index's ID map: a
    refined graph's second index, an older graph's storage, or the flat index itself."""
    inner = faiss.downcast_index(index.index)
    if isinstance(inner, faiss.IndexRefine):
        return faiss.downcast_index(inner.refine_index)
    if isinstance(inner, faiss.IndexHNSW):
        return faiss.downcast_index(inner.storage)
    return inner


def _tune(index: Any) -> None:
    """Set the per-question search parameters of a loaded graph (this version's, whatever
    the file was written with)."""
    inner = faiss.downcast_index(index.index)
    if isinstance(inner, faiss.IndexRefine):
        inner.k_factor = HNSW_REFINE
        inner = faiss.downcast_index(inner.base_index)
    if isinstance(inner, faiss.IndexHNSW):
        inner.hnsw.efSearch = HNSW_EF_SEARCH


def _write_manifest(
    folder: Path, manifest: dict[str, Any], name: str, dim: int, counts: dict[str, int]
) -> None:
    manifest = {
        **manifest,
        "format": FORMAT_VERSION,
        "generation": name,
        "chunker": CHUNKER_VERSION,
        "dim": dim,
        "counts": {k: counts[k] for k in ("docs", "passages", "sentences")},
        "search": search_kind(counts["passages"]),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def prune(index_dir: Path) -> None:
    """Remove half-written folders and all but the newest complete generations."""
    live = current_generation(index_dir)
    for tmp in index_dir.glob(".tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True)
    for stale in index_dir.glob(".CURRENT.*"):
        stale.unlink(missing_ok=True)
    gens = index_dir / "generations"
    if not gens.is_dir():
        return
    complete = sorted(p for p in gens.iterdir() if (p / "manifest.json").exists())
    keep = {p.name for p in complete[-KEEP_GENERATIONS:]} | ({live} if live else set())
    for p in gens.iterdir():
        if p.name not in keep:
            shutil.rmtree(p, ignore_errors=True)


def _complete(index_dir: Path) -> list[str]:
    """Complete generations, newest first."""
    gens = index_dir / "generations"
    if not gens.is_dir():
        return []
    names = [p.name for p in gens.iterdir() if _GEN_NAME.match(p.name)]
    return sorted((n for n in names if _manifest(gens / n) is not None), reverse=True)


def load_snapshot(index_dir: Path) -> Snapshot:
    """Load the live generation into memory; if it is damaged, the newest intact one.

    A writer may switch generations and prune the old one while we read; then we read
    the new one. A damaged generation is logged and passed over (``index`` rebuilds it).

    Raises:
        IndexMissing: There is no intact generation.
    """
    for _ in range(5):
        live = current_generation(index_dir)
        order = ([live] if live else []) + [n for n in _complete(index_dir) if n != live]
        for name in order:
            folder = index_dir / "generations" / name
            try:
                if not intact(folder):
                    raise ValueError("its files are not the size they were written")
                snap = _load_generation(folder, name)
            except OlderFormat as exc:
                log.info("index generation %s %s; `index` rewrites it", name, exc)
                continue
            except Exception as exc:  # noqa: BLE001 - damage has no common exception type
                if current_generation(index_dir) != live:
                    break  # a writer switched generations meanwhile: start again
                log.warning("index generation %s is damaged (%s); using an older one", name, exc)
                continue
            snap.live = live or name
            return snap
        else:
            raise IndexMissing(f"no intact index in {index_dir}")
        time.sleep(0.05)
    raise IndexMissing(f"no index in {index_dir}")


_MMAP_VECTORS = getattr(faiss, "IO_FLAG_MMAP_IFC", 0)


def _random_access(array: np.ndarray) -> np.ndarray:
    """A memory-mapped array read a few rows at a time, anywhere: no read-ahead (each
    question reads a few hundred scattered sentence vectors, not the pages after them)."""
    mapped = getattr(array, "_mmap", None)
    if mapped is not None and hasattr(mmap, "MADV_RANDOM"):
        mapped.madvise(mmap.MADV_RANDOM)
    return array.view(np.ndarray)


def _load_generation(folder: Path, name: str) -> Snapshot:
    manifest = json.loads((folder / "manifest.json").read_text())
    if manifest.get("format") not in READABLE_FORMATS:
        raise OlderFormat(f"is in format {manifest.get('format')}, not {FORMAT_VERSION}")
    db = sqlite3.connect(
        f"file:{folder / 'library.sqlite'}?mode=ro", uri=True, check_same_thread=False
    )
    meta = {
        d: DocMeta(d, title, author, date, source, url, via, digest, path, extra)
        for d, title, author, date, source, url, via, digest, path, extra in db.execute(
            "SELECT doc_id, title, author, date, source, url, via, content_hash, path, extra"
            " FROM docs ORDER BY ord"
        )
    }
    doc_ids = list(meta)
    # Plain arrays over the mapped files: a memmap object per row read costs microseconds.
    passages = np.load(folder / "passage_rows.npy", mmap_mode="r").view(np.ndarray)
    sentences = np.load(folder / "sentence_rows.npy", mmap_mode="r").view(np.ndarray)
    # Questions search one vector at a time, where FAISS's OpenMP threads cost more than
    # they give (100,000 passages on 2 cores: 15 ms a search with 2 threads, 11 ms with 1).
    # FAISS ships its own OpenMP runtime, so this leaves torch and onnxruntime alone.
    faiss.omp_set_num_threads(1)
    # The vectors stay in the file, memory-mapped (650,000 passages: read in 0.03 s, not
    # 0.8 s into a private gigabyte); the page cache shares them between processes.
    dense: Any = faiss.read_index(str(folder / "passages.faiss"), _MMAP_VECTORS)
    _tune(dense)
    return Snapshot(
        generation=name,
        manifest=manifest,
        docs=Library(db, meta),
        passages=PassageTable(passages, doc_ids),
        sent_doc=DocColumn(sentences[:, 0], doc_ids),
        sent_span=sentences[:, 1:3],
        sent_para=sentences[:, 3],
        sent_passage=sentences[:, 4],
        sent_vectors=_random_access(np.load(folder / "sentences.npy", mmap_mode="r")),
        dense=dense,
        lexical=LexicalIndex.load(folder / "bm25", len(passages)),
        extras=json.loads((folder / "extras.json").read_text()),
    )
