"""Build or refresh the index: incremental (cached embeddings), atomic, one writer at a time."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from bot.index.cache import EmbeddingCache
from bot.ingest.chunking import (
    CHUNKER_VERSION,
    Sentence,
    make_passages,
    passage_hash,
    sentence_spans,
    split_sentences,
)
from bot.ingest.documents import Document, DocumentError, library_files, read_document
from bot.index.embed import Embedder
from bot.index.keypoints import SUMMARY_VERSION, essay_summary_points
from bot.settings import Settings
from bot.index.store import DocChunks, read_manifest, write_generation

EMBED_BATCH = 64
#: Per-document results computed at index time and stored with the generation, cached by
#: document hash: name -> (version, function of the document's chunks).
EXTRAS: dict[str, tuple[str, Callable[[DocChunks], Any]]] = {
    "summary": (SUMMARY_VERSION, essay_summary_points),
}


@dataclass
class IndexReport:
    """What a (re)index did."""

    generation: str | None = None
    rebuilt: bool = False
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    passages_embedded: int = 0
    passages_reused: int = 0
    waited_seconds: float = 0.0
    seconds: float = 0.0

    def summary(self) -> str:
        """A few human-readable lines."""
        if not self.rebuilt:
            head = f"Index is up to date (generation {self.generation})."
        else:
            head = (
                f"Index generation {self.generation}: {len(self.added)} added, "
                f"{len(self.changed)} changed, {len(self.removed)} removed, "
                f"{len(self.unchanged)} unchanged essays; {self.passages_embedded} passages "
                f"embedded, {self.passages_reused} reused ({self.seconds:.1f} s)."
            )
        lines = [head]
        if self.waited_seconds >= 0.05:
            lines.append(f"Waited {self.waited_seconds:.1f} s for another reindex to finish.")
        for name, items in (("Added", self.added), ("Changed", self.changed)):
            if items:
                lines.append(f"{name}: {', '.join(items)}")
        if self.removed:
            lines.append(f"Removed: {', '.join(self.removed)}")
        lines.extend(f"Skipped {s}" for s in self.skipped)
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dict(self.__dict__)


def _checkpoint(stage: str) -> None:
    """Test hook: report the stage to a file and pause, so a test can kill us inside it."""
    hook = os.environ.get("BOT_INDEX_HOOK_FILE")
    if hook:
        with open(hook, "a") as fh:
            fh.write(stage + "\n")
        time.sleep(float(os.environ.get("BOT_INDEX_HOOK_SLEEP", "0.5")))


def fingerprint(settings: Settings, model_key: str) -> dict[str, Any]:
    """What the index depends on: library file hashes, the model and the chunker."""
    files = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:24]
        for p in library_files(settings.seeds_dir)
    }
    extras = {name: version for name, (version, _) in sorted(EXTRAS.items())}
    return {"files": files, "model": model_key, "chunker": CHUNKER_VERSION, "extras": extras}


def is_stale(settings: Settings, model_key: str) -> bool:
    """True when the live index is missing or was built from something else."""
    manifest = read_manifest(settings.index_dir)
    if manifest is None:
        return True
    return bool(manifest.get("fingerprint") != fingerprint(settings, model_key))


_LOCKS: dict[str, FileLock] = {}


def lock_for(settings: Settings) -> FileLock:
    """The writers' lock of an index folder: one object per folder in a process, so a
    thread that holds it may take it again (an add that reindexes), while other threads
    and processes wait."""
    settings.index_dir.mkdir(parents=True, exist_ok=True)
    path = str((settings.index_dir / ".lock").resolve())
    if path not in _LOCKS:
        _LOCKS[path] = FileLock(path, thread_local=True)
    return _LOCKS[path]


def chunk_document(
    doc: Document, cache: EmbeddingCache | None = None
) -> tuple[DocChunks, list[str], list[str]]:
    """Sentences and passages of a document, with passage texts and hashes (no vectors).

    Args:
        doc: The document.
        cache: Where sentence spans of unchanged documents are remembered.
    """
    key = f"{CHUNKER_VERSION}:{doc.content_hash}"
    known = cache.get_sentences(key) if cache else None
    if known is not None:
        sentences = [Sentence(*row) for row in known]
    else:
        sentences = split_sentences(doc)
        if cache:
            cache.put_sentences(key, [(s.start, s.end, s.paragraph) for s in sentences])
    passages = make_passages(doc, sentences)
    texts = [p.embed_text(doc.text, sentences) for p in passages]
    hashes = [passage_hash(t, sentence_spans(p, sentences)) for t, p in zip(texts, passages)]
    return DocChunks(doc, sentences, passages, [], []), texts, hashes


def _embed_missing(
    embedder: Embedder,
    cache: EmbeddingCache,
    todo: list[tuple[str, str, list[tuple[int, int]]]],
    progress: bool,
) -> None:
    bar = None
    if progress and len(todo) > EMBED_BATCH:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="Embedding passages", unit="passage", file=sys.stderr)
    for i in range(0, len(todo), EMBED_BATCH):
        batch = todo[i : i + EMBED_BATCH]
        _checkpoint("embed")
        vectors = embedder.embed_passages([t for _, t, _ in batch], [s for _, _, s in batch])
        cache.put_many({h: v for (h, _, _), v in zip(batch, vectors, strict=True)})
        if bar:
            bar.update(len(batch))
    if bar:
        bar.close()


def _build(
    settings: Settings, embedder: Embedder, progress: bool, report: IndexReport
) -> IndexReport:
    started = time.perf_counter()
    old = read_manifest(settings.index_dir) or {}
    old_docs: dict[str, str] = old.get("docs", {})
    _checkpoint("parse")
    prepared: list[tuple[DocChunks, list[str], list[str]]] = []
    seen: set[str] = set()
    cache = EmbeddingCache(settings.index_dir / "embeddings.sqlite", embedder.key)
    try:
        for path in library_files(settings.seeds_dir):
            try:
                doc = read_document(path)
            except DocumentError as exc:
                report.skipped.append(str(exc))
                continue
            if doc.doc_id in seen:
                report.skipped.append(f"{path.name}: duplicate essay id {doc.doc_id!r}")
                continue
            seen.add(doc.doc_id)
            prepared.append(chunk_document(doc, cache))
        all_hashes = [h for _, _, hashes in prepared for h in hashes]
        cached = cache.get_many(all_hashes)
        todo: dict[str, tuple[str, str, list[tuple[int, int]]]] = {}
        for chunks, texts, hashes in prepared:
            for p, t, h in zip(chunks.passages, texts, hashes, strict=True):
                if h not in cached and h not in todo:
                    todo[h] = (h, t, sentence_spans(p, chunks.sentences))
        _embed_missing(embedder, cache, list(todo.values()), progress)
        vectors = cached | cache.get_many(todo)
    finally:
        cache.close()
    report.passages_embedded = len(todo)
    report.passages_reused = len(all_hashes) - len(todo)

    chunk_list: list[DocChunks] = []
    extras: dict[str, dict[str, Any]] = {name: {} for name in EXTRAS}
    old_extras = _old_extras(settings, old)
    for chunks, _, hashes in prepared:
        chunks.passage_vectors = [vectors[h].passage for h in hashes]
        chunks.sentence_vectors = [vectors[h].sentences for h in hashes]
        chunk_list.append(chunks)
        doc = chunks.doc
        for name, (version, fn) in EXTRAS.items():
            key = f"{version}:{doc.content_hash}:{embedder.key}"
            prev = old_extras.get(name, {}).get(doc.doc_id)
            if prev and prev.get("key") == key:
                extras[name][doc.doc_id] = prev
            else:
                extras[name][doc.doc_id] = {"key": key, "value": fn(chunks)}

    new_docs = {c.doc.doc_id: c.doc.content_hash for c in chunk_list}
    report.added = sorted(d for d in new_docs if d not in old_docs)
    report.changed = sorted(d for d in new_docs if d in old_docs and old_docs[d] != new_docs[d])
    report.unchanged = sorted(d for d in new_docs if old_docs.get(d) == new_docs[d])
    report.removed = sorted(d for d in old_docs if d not in new_docs)
    manifest = {"fingerprint": fingerprint(settings, embedder.key), "docs": new_docs}
    dim = int(next(iter(vectors.values())).passage.shape[0]) if vectors else embedder.dim
    report.generation = write_generation(
        settings.index_dir, chunk_list, manifest, dim, extras, checkpoint=_checkpoint
    )
    report.rebuilt = True
    report.seconds = time.perf_counter() - started
    return report


def _old_extras(settings: Settings, manifest: dict[str, Any]) -> dict[str, Any]:
    name = manifest.get("generation")
    if not name:
        return {}
    path = Path(settings.index_dir) / "generations" / name / "extras.json"
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def build_index(
    settings: Settings,
    embedder: Embedder,
    *,
    force: bool = False,
    progress: bool = False,
    lock_timeout: float = 600.0,
) -> IndexReport:
    """Bring the index up to date with the library folder.

    Args:
        settings: Where the library and the index are.
        embedder: The model.
        force: Write a new generation even when nothing changed.
        progress: Show a progress bar while embedding.
        lock_timeout: How long to wait for another writer.

    Returns:
        What was done.

    Raises:
        filelock.Timeout: Another reindex held the lock for longer than `lock_timeout`.
    """
    report = IndexReport()
    lock = lock_for(settings)
    t0 = time.perf_counter()
    try:
        lock.acquire(timeout=0)
    except Timeout:
        lock.acquire(timeout=lock_timeout)
        report.waited_seconds = time.perf_counter() - t0
    try:
        if not force and not is_stale(settings, embedder.key):
            manifest = read_manifest(settings.index_dir) or {}
            report.generation = manifest.get("generation")
            report.unchanged = sorted(manifest.get("docs", {}))
            return report
        return _build(settings, embedder, progress, report)
    finally:
        lock.release()
