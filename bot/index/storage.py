"""The files of one index generation: written by the build, read into a :class:`Snapshot`.

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

import json
import mmap
import sqlite3
from pathlib import Path

import numpy as np

from bot.index import ann
from bot.index.chunks import DocChunks
from bot.index.essays import EssayRecord, Library, digest, meta_json, paragraphs_json
from bot.index.lexical import LexicalIndex
from bot.index.snapshot import DocColumn, PassageTable, Snapshot
from bot.ingest.model import EssayMeta

#: 2: passage and sentence rows in memory-mapped .npy files. 3: an HNSW graph holds 8-bit
#: codes and re-ranks with the exact vectors. 4: the manifest holds each essay's checksums
#: (text, paragraphs, metadata), checked as an essay is read (older formats are rebuilt by
#: `index`, reusing the cached vectors: served unchecked, a damaged byte could quote words
#: the author never wrote).
FORMAT_VERSION = 4
READABLE_FORMATS = (4,)


class OlderFormat(ValueError):
    """A generation written by another version of the index format (rebuilt, reusing the
    cached vectors, by the next `index`)."""


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
            paragraphs = paragraphs_json(d)
            db.execute(
                "INSERT INTO docs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (meta[0], order, *meta[1:7], d.text, *meta[7:], paragraphs),
            )
            checks[m.doc_id] = [digest(d.text), digest(paragraphs), digest(meta_json(meta))]
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
        if d not in checks or digest(meta_json(row)) != checks[d][2]:
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
