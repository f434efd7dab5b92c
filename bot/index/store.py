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
import os
import re
import shutil
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from bot.index.chunks import DocChunks
from bot.index.lexical import LexicalIndex, tokenize
from bot.ingest.chunking import CHUNKER_VERSION
from bot.ingest.documents import Document, Paragraph

FORMAT_VERSION = 1
_GEN_NAME = re.compile(r"^(\d{6})-\d{8}T")
log = logging.getLogger(__name__)
KEEP_GENERATIONS = 2


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


@dataclass
class Snapshot:
    """One complete, loaded index generation: everything a query needs, in memory.

    Attributes:
        generation: The generation's name.
        manifest: What it was built from (model, chunker, document hashes).
        docs: Documents by id, in library order.
        passages: Passage rows; row number = FAISS id = BM25 row.
        sent_doc: Document id of each sentence row.
        sent_span: (start, end) of each sentence row in its document's text.
        sent_para: Paragraph index (into ``Document.paragraphs``) of each sentence row.
        sent_passage: Passage row of each sentence row.
        sent_vectors: Unit vectors of each sentence embedded on its own, one row each
            (float16, memory-mapped: read them as float32 with :meth:`sentence_vectors`).
        dense: FAISS ``IndexIDMap(IndexFlatIP)`` over passage vectors.
        lexical: BM25 over passage texts.
        extras: Per-generation precomputed results (e.g. essay summaries).
    """

    generation: str
    manifest: dict[str, Any]
    docs: dict[str, Document]
    passages: list[PassageRow]
    sent_doc: list[str]
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

    def authors(self) -> frozenset[str]:
        """Every essay author of the library."""
        if self._authors is None:
            self._authors = frozenset(d.author for d in self.docs.values() if d.author)
        return self._authors

    def vocabulary(self) -> frozenset[str]:
        """Every BM25 term of the library's passages, titles and authors."""
        if self._vocabulary is None:
            words = set(self.lexical.retriever.vocab_dict) if self.lexical.size else set()
            for doc in self.docs.values():
                words.update(tokenize(f"{doc.title} {doc.author or ''}"))
            self._vocabulary = frozenset(words)
        return self._vocabulary

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
        """The passage vectors as a matrix (copied once from the flat FAISS index)."""
        if self._passage_vectors is None:
            flat: Any = faiss.downcast_index(self.dense.index)
            codes = faiss.vector_to_array(flat.codes)
            self._passage_vectors = codes.view(np.float32).reshape(len(self.passages), -1)
        return self._passage_vectors

    def sentence_text(self, row: int) -> str:
        """The exact text of a sentence row."""
        s, e = self.sent_span[row]
        return self.docs[self.sent_doc[row]].text[int(s) : int(e)]

    def passage_counts(self) -> dict[str, int]:
        """Passages per document."""
        counts = dict.fromkeys(self.docs, 0)
        for p in self.passages:
            counts[p.doc_id] = counts.get(p.doc_id, 0) + 1
        return counts


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
    _write_sqlite(tmp / "library.sqlite", chunks)
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
CREATE TABLE passages (id INTEGER PRIMARY KEY, doc_id TEXT, start INTEGER, end INTEGER,
    first_sentence INTEGER, n_sentences INTEGER, paragraph INTEGER);
CREATE TABLE sentences (id INTEGER PRIMARY KEY, doc_id TEXT, start INTEGER,
    end INTEGER, paragraph INTEGER, passage INTEGER);
"""


def _write_sqlite(path: Path, chunks: list[DocChunks]) -> None:
    """Documents, passage rows and sentence rows; row numbers match the vector files."""
    passage_rows: list[tuple[Any, ...]] = []
    sentence_rows: list[tuple[Any, ...]] = []
    db = sqlite3.connect(path)
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
                    sentence_rows.append(
                        (len(sentence_rows), d.doc_id, s.start, s.end, s.paragraph, pid)
                    )
                passage_rows.append(
                    (pid, d.doc_id, p.start, p.end, first, len(p.sentences), p.paragraph)
                )
        db.executemany("INSERT INTO passages VALUES (?,?,?,?,?,?,?)", passage_rows)
        db.executemany("INSERT INTO sentences VALUES (?,?,?,?,?,?)", sentence_rows)
        db.commit()
    finally:
        db.close()


def _write_vectors(folder: Path, chunks: list[DocChunks], dim: int) -> dict[str, int]:
    """The FAISS index of passage vectors and the sentence vectors; returns their counts."""
    p_vecs = [v for c in chunks for v in c.passage_vectors]
    s_vecs = [v for c in chunks for v in c.sentence_vectors]
    passages = np.vstack(p_vecs).astype(np.float32) if p_vecs else np.zeros((0, dim), np.float32)
    # Sentence vectors only rank a passage's few sentences against each other: float16
    # halves them on disk and in memory (eval figures unchanged; bench/README.md).
    sentences = np.vstack(s_vecs).astype(np.float16) if s_vecs else np.zeros((0, dim), np.float16)
    index = faiss.IndexIDMap(faiss.IndexFlatIP(dim))
    if len(passages):
        index.add_with_ids(passages, np.arange(len(passages), dtype=np.int64))
    faiss.write_index(index, str(folder / "passages.faiss"))
    np.save(folder / "sentences.npy", sentences)
    return {"passages": len(passages), "sentences": len(sentences)}


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


def _load_generation(folder: Path, name: str) -> Snapshot:
    manifest = json.loads((folder / "manifest.json").read_text())
    db = sqlite3.connect(f"file:{folder / 'library.sqlite'}?mode=ro", uri=True)
    try:
        docs: dict[str, Document] = {}
        for row in db.execute(
            "SELECT doc_id, title, author, date, source, url, via, text, content_hash, path,"
            " extra, paragraphs FROM docs ORDER BY ord"
        ):
            docs[row[0]] = Document(
                doc_id=row[0], title=row[1], author=row[2], date=row[3], source=row[4],
                url=row[5], via=row[6], text=row[7], paragraphs=_paragraphs_from_json(row[11]),
                content_hash=row[8], path=row[9], extra=json.loads(row[10]),
            )  # fmt: skip
        passages = [
            PassageRow(*row)
            for row in db.execute(
                "SELECT doc_id, start, end, first_sentence, n_sentences, paragraph"
                " FROM passages ORDER BY id"
            )
        ]
        srows = db.execute(
            "SELECT doc_id, start, end, paragraph, passage FROM sentences ORDER BY id"
        ).fetchall()
    finally:
        db.close()
    # Questions search one vector at a time, where FAISS's OpenMP threads cost more than
    # they give (100,000 passages on 2 cores: 15 ms a search with 2 threads, 11 ms with 1).
    # FAISS ships its own OpenMP runtime, so this leaves torch and onnxruntime alone.
    faiss.omp_set_num_threads(1)
    dense = faiss.read_index(str(folder / "passages.faiss"))
    return Snapshot(
        generation=name,
        manifest=manifest,
        docs=docs,
        passages=passages,
        sent_doc=[r[0] for r in srows],
        sent_span=np.array([(r[1], r[2]) for r in srows], dtype=np.int64).reshape(-1, 2),
        sent_para=np.array([r[3] for r in srows], dtype=np.int64),
        sent_passage=np.array([r[4] for r in srows], dtype=np.int64),
        sent_vectors=np.load(folder / "sentences.npy", mmap_mode="r"),  # paged in as used
        dense=dense,
        lexical=LexicalIndex.load(folder / "bm25", len(passages)),
        extras=json.loads((folder / "extras.json").read_text()),
    )
