"""Build or refresh the index: incremental (cached embeddings), atomic, one writer at a time."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from bot.errors import StoreUnavailable, store_problem
from bot.index.ann import describe_search, search_kind
from bot.index.cache import EmbeddingCache
from bot.index.chunks import DocChunks, chunk_document
from bot.index.embed import Embedder, PassageVectors
from bot.index.generations import (
    Progress,
    current_generation,
    intact,
    no_progress,
    prune,
    read_manifest,
    write_generation,
)
from bot.index.keypoints import SUMMARY_VERSION, essay_summary_points
from bot.index.storage import FORMAT_VERSION
from bot.ingest.chunking import CHUNKER_VERSION
from bot.ingest.documents import library_files, read_document
from bot.ingest.model import DocumentError
from bot.settings import Settings

EMBED_BATCH = 256  # passages per embedding call (with their sentences, sorted together)
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
    passages: int = 0
    search: str = ""  # "exact" or "hnsw" (see bot.index.ann.build)

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
        if self.search:
            lines.append(f"Search: {describe_search(self.search, self.passages)}.")
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


#: Files to index otherwise than the folder has them: path in the folder -> where to read
#: it from, or None to index as if it were gone (a remove takes the essay out of the index
#: before its file leaves the folder).
Staged = dict[Path, Path | None]


def library_sources(settings: Settings, staged: Staged | None = None) -> dict[Path, Path]:
    """Each library file's path in the folder -> where to read it from."""
    sources: dict[Path, Path | None] = {p: p for p in library_files(settings.seeds_dir)}
    sources.update(staged or {})
    return {p: s for p, s in sorted(sources.items()) if s is not None}


def fingerprint(
    settings: Settings,
    model_key: str,
    staged: Staged | None = None,
    known: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What the index depends on: library file hashes, the model and the chunker.

    Args:
        settings: Where the library is.
        model_key: The model.
        staged: Files to read from elsewhere (see :func:`library_sources`).
        known: A previous fingerprint: a file whose size and modification time are the
            ones recorded there keeps its hash unread (a 10,000-essay library is 300 MB
            to hash on every `ask`).
    """
    old_files, old_stats = (known or {}).get("files", {}), (known or {}).get("stats", {})
    files, stats = {}, {}
    for path, source in library_sources(settings, staged).items():
        try:
            st = source.stat()
            stat = [st.st_size, st.st_mtime_ns]
            if path.name in old_files and old_stats.get(path.name) == stat:
                digest = old_files[path.name]
            else:
                digest = hashlib.sha256(source.read_bytes()).hexdigest()[:24]
        except (FileNotFoundError, NotADirectoryError):
            continue  # removed since the folder was listed: absent, as it now is
        files[path.name], stats[path.name] = digest, stat
    extras = {name: version for name, (version, _) in sorted(EXTRAS.items())}
    return {"files": files, "stats": stats, "model": model_key, "chunker": CHUNKER_VERSION,
            "extras": extras, "format": FORMAT_VERSION}  # fmt: skip


def is_stale(settings: Settings, model_key: str) -> bool:
    """True when the live index is missing or was built from something else."""
    return changed_since_index(settings, model_key) != []


def _live_damaged(settings: Settings) -> bool:
    """The live generation's files are not those it was written with (checksums)."""
    live = current_generation(settings.index_dir)
    return live is not None and not intact(settings.index_dir / "generations" / live, full=True)


def changed_since_index(settings: Settings, model_key: str) -> list[str] | None:
    """The library files added, changed or removed since the live index was built.

    Returns:
        Their names (empty when the index is current), or None when there is no index or
        it was built with another model, chunker or summary version (everything changed).
    """
    manifest = read_manifest(settings.index_dir)
    old = (manifest or {}).get("fingerprint") or {}
    now = fingerprint(settings, model_key, known=old)
    if not old or {k: v for k, v in old.items() if k not in ("files", "stats")} != {
        k: v for k, v in now.items() if k not in ("files", "stats")
    }:
        return None
    before, after = old.get("files", {}), now["files"]
    return sorted(n for n in before.keys() | after.keys() if before.get(n) != after.get(n))


_LOCKS: dict[str, FileLock] = {}


class WritersLock(FileLock):
    """A file lock whose file cannot be made (a full or read-only disk) refuses in one
    line, naming why (:class:`~bot.errors.StoreUnavailable`); waiting stays a Timeout."""

    def acquire(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().acquire(*args, **kwargs)
        except Timeout:
            raise
        except OSError as exc:
            where = f"the writers' lock {self.lock_file}"
            raise StoreUnavailable(store_problem(exc, where)) from exc


def lock_for(settings: Settings) -> FileLock:
    """The writers' lock of an index folder: one object per folder in a process, so a
    thread that holds it may take it again (an add that reindexes), while other threads
    and processes wait."""
    if not settings.index_dir.is_dir():
        settings.index_dir.mkdir(parents=True, exist_ok=True)
    path = str((settings.index_dir / ".lock").resolve())
    if path not in _LOCKS:
        _LOCKS[path] = WritersLock(path, thread_local=True)
    return _LOCKS[path]


def _read_library(
    settings: Settings, cache: EmbeddingCache, report: IndexReport, staged: Staged | None
) -> list[DocChunks]:
    """Every readable essay of the library folder, chunked; the rest reported as skipped."""
    prepared: list[DocChunks] = []
    seen: set[str] = set()
    for path, source in library_sources(settings, staged).items():
        try:
            doc = read_document(source, path)
            if doc.meta.doc_id in seen:
                raise DocumentError(f"{path.name}: duplicate essay id {doc.meta.doc_id!r}")
            prepared.append(chunk_document(doc, cache, settings.max_essay_sentences))
        except DocumentError as exc:
            report.skipped.append(str(exc))
            continue
        seen.add(doc.meta.doc_id)
    return prepared


def _embed(
    embedder: Embedder,
    cache: EmbeddingCache,
    prepared: list[DocChunks],
    progress: Progress,
) -> tuple[dict[str, PassageVectors], int]:
    """Vectors for every passage: from the cache, or embedded now and cached.

    Returns:
        Vectors by passage hash, and how many passages were embedded.
    """
    cached = cache.get_many(h for c in prepared for h in c.hashes)
    todo: dict[str, tuple[str, list[tuple[int, int]]]] = {}
    for c in prepared:
        for i, (text, h) in enumerate(zip(c.texts, c.hashes, strict=True)):
            if h not in cached and h not in todo:
                todo[h] = (text, c.spans(i))
    items = list(todo.items())
    for i in range(0, len(items), EMBED_BATCH):
        progress("embed", i, len(items))
        batch = items[i : i + EMBED_BATCH]
        vectors = embedder.embed_passages([t for _, (t, _) in batch], [s for _, (_, s) in batch])
        cache.put_many({h: v for (h, _), v in zip(batch, vectors, strict=True)})
    if items:
        progress("embed", len(items), len(items))
    return cached | cache.get_many(todo), len(todo)


def _extras(
    settings: Settings, old: dict[str, Any], chunk_list: list[DocChunks], model_key: str
) -> dict[str, dict[str, Any]]:
    """Per-document results (e.g. essay summaries): reused when the document, the model
    and the function's version are unchanged, computed otherwise."""
    extras: dict[str, dict[str, Any]] = {name: {} for name in EXTRAS}
    old_extras = _old_extras(settings, old)
    for chunks in chunk_list:
        doc = chunks.doc
        for name, (version, fn) in EXTRAS.items():
            key = f"{version}:{doc.content_hash}:{model_key}"
            prev = old_extras.get(name, {}).get(doc.meta.doc_id)
            fresh = prev if prev and prev.get("key") == key else {"key": key, "value": fn(chunks)}
            extras[name][doc.meta.doc_id] = fresh
    return extras


def _compare(report: IndexReport, old_docs: dict[str, str], new_docs: dict[str, str]) -> None:
    report.added = sorted(d for d in new_docs if d not in old_docs)
    report.changed = sorted(d for d in new_docs if d in old_docs and old_docs[d] != new_docs[d])
    report.unchanged = sorted(d for d in new_docs if old_docs.get(d) == new_docs[d])
    report.removed = sorted(d for d in old_docs if d not in new_docs)


def _build(
    settings: Settings,
    embedder: Embedder,
    progress: Progress,
    report: IndexReport,
    staged: Staged | None,
) -> IndexReport:
    started = time.perf_counter()
    old = read_manifest(settings.index_dir) or {}
    progress("parse", 0, 0)
    # Taken before the files are read: a file changed meanwhile then looks changed to
    # the next staleness check (and is indexed again), never current.
    printed = fingerprint(settings, embedder.key, staged)
    cache = EmbeddingCache(settings.index_dir / "embeddings.sqlite", embedder.key)
    try:
        chunk_list = _read_library(settings, cache, report, staged)
        vectors, embedded = _embed(embedder, cache, chunk_list, progress)
    finally:
        cache.close()
    report.passages_embedded = embedded
    report.passages_reused = sum(len(c.hashes) for c in chunk_list) - embedded
    for chunks in chunk_list:
        chunks.passage_vectors = [vectors[h].passage for h in chunks.hashes]
        chunks.sentence_vectors = [vectors[h].sentences for h in chunks.hashes]
    progress("key-points", 0, 0)
    extras = _extras(settings, old, chunk_list, embedder.key)
    new_docs = {c.doc.meta.doc_id: c.doc.content_hash for c in chunk_list}
    _compare(report, old.get("docs", {}), new_docs)
    manifest = {"fingerprint": printed, "docs": new_docs}
    dim = int(next(iter(vectors.values())).passage.shape[0]) if vectors else embedder.dim
    report.generation = write_generation(
        settings.index_dir, chunk_list, manifest, dim, extras, progress
    )
    report.rebuilt = True
    report.passages = sum(len(c.hashes) for c in chunk_list)
    report.search = search_kind(report.passages)
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
    progress: Progress = no_progress,
    lock_timeout: float = 600.0,
    staged: Staged | None = None,
) -> IndexReport:
    """Bring the index up to date with the library folder.

    Args:
        settings: Where the library and the index are.
        embedder: The model.
        force: Write a new generation even when nothing changed.
        progress: Told each stage as it starts, and passages embedded / to embed (see
            :data:`bot.index.generations.Progress`).
        lock_timeout: How long to wait for another writer.
        staged: Files to index as if they were already in the library folder.

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
        if not (force or staged or is_stale(settings, embedder.key) or _live_damaged(settings)):
            prune(settings.index_dir)  # what an interrupted writer left behind
            manifest = read_manifest(settings.index_dir) or {}
            report.generation = manifest.get("generation")
            report.unchanged = sorted(manifest.get("docs", {}))
            report.passages = int(manifest.get("counts", {}).get("passages", 0))
            report.search = manifest.get("search") or search_kind(report.passages)
            return report
        return _build(settings, embedder, progress, report, staged)
    finally:
        lock.release()
