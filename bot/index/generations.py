"""Index generations on disk: written beside the live one, switched in with a rename,
read back newest-intact-first.

Layout of ``INDEX_DIR``::

    CURRENT                 name of the live generation (replaced atomically)
    generations/<name>/     one generation's files (:mod:`bot.index.storage`) --
                            complete or absent, never half-written
    embeddings.sqlite       the embedding cache shared by all generations
    audit.sqlite            who changed the library, when
    query-model/            the model's checked ONNX export (:mod:`bot.index.query_model`)
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
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from bot.errors import StoreUnavailable, is_full_disk, store_problem
from bot.index import ann
from bot.index.chunks import DocChunks
from bot.index.lexical import LexicalIndex
from bot.index.snapshot import Snapshot
from bot.index.storage import (
    FORMAT_VERSION,
    OlderFormat,
    read_generation,
    write_rows,
    write_vectors,
)
from bot.ingest.chunking import CHUNKER_VERSION

_GEN_NAME = re.compile(r"^(\d{6})-\d{8}T")
log = logging.getLogger(__name__)
KEEP_GENERATIONS = 2


class IndexMissing(RuntimeError):
    """No complete index generation exists yet."""


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


#: Told how a build is going: (stage, done, total). Stages: "parse"; "embed" once per
#: batch, with passages embedded / to embed; "key-points"; then the writing stages of
#: :func:`write_generation` ("write-sqlite" ... "prune"), each as it starts, with 0, 0.
#: Front ends show it; the crash test stops a build there.
Progress = Callable[[str, int, int], None]


def no_progress(stage: str, done: int, total: int) -> None:
    """The default progress hook: nothing to report."""


def write_generation(
    index_dir: Path,
    chunks: list[DocChunks],
    manifest: dict[str, Any],
    dim: int,
    extras: dict[str, Any] | None = None,
    progress: Progress = no_progress,
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
        progress: Told each writing stage as it starts.

    Returns:
        The new generation's name.
    """

    def stage(name: str) -> None:
        progress(name, 0, 0)

    gens = index_dir / "generations"
    gens.mkdir(parents=True, exist_ok=True)
    name = _new_generation_name(gens)
    tmp = index_dir / f".tmp-{name}"
    try:
        return _write(index_dir, tmp, name, chunks, manifest, dim, extras, stage)
    except (OSError, sqlite3.Error) as exc:
        shutil.rmtree(tmp, ignore_errors=True)  # never named live: the live one stands
        if is_full_disk(exc):
            where = f"the new index generation in {index_dir}"
            raise StoreUnavailable(store_problem(exc, where)) from exc
        raise


def _write(
    index_dir: Path,
    tmp: Path,
    name: str,
    chunks: list[DocChunks],
    manifest: dict[str, Any],
    dim: int,
    extras: dict[str, Any] | None,
    stage: Callable[[str], None],
) -> str:
    """:func:`write_generation`'s steps, in `tmp` until it is renamed into place."""
    gens = index_dir / "generations"
    tmp.mkdir()
    stage("write-sqlite")
    essays = write_rows(tmp, chunks)
    stage("write-vectors")
    counts = write_vectors(tmp, chunks, dim)
    stage("write-bm25")
    texts = [text for c in chunks for text in c.texts]
    LexicalIndex.build(texts).save(tmp / "bm25")
    (tmp / "extras.json").write_text(json.dumps(extras or {}))
    stage("write-manifest")
    counts["docs"] = len(chunks)
    manifest = {**manifest, "files": _checksums(tmp), "essays": essays}
    _write_manifest(tmp, manifest, name, dim, counts)
    fsync_dir(tmp)
    stage("rename")
    os.rename(tmp, gens / name)
    fsync_dir(gens)
    stage("switch")
    pointer = index_dir / f".CURRENT.{name}"
    pointer.write_text(name + "\n")
    os.replace(pointer, index_dir / "CURRENT")
    fsync_dir(index_dir)
    stage("prune")
    prune(index_dir)
    return name


def _new_generation_name(gens: Path) -> str:
    """Sortable and unique: a sequence number, the time, and a random suffix."""
    numbers = [int(m.group(1)) for p in gens.iterdir() if (m := _GEN_NAME.match(p.name))]
    stamp = time.strftime("%Y%m%dT%H%M%S")
    return f"{max(numbers, default=0) + 1:06d}-{stamp}-{uuid.uuid4().hex[:6]}"


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
        "search": ann.search_kind(counts["passages"]),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))


def fsync_dir(path: Path) -> None:
    """Put a folder's entries (a file renamed or linked in) on disk. Some file systems
    cannot sync a folder (EINVAL on some network shares): there the files themselves
    were synced, and that is all they offer."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass
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


def load_snapshot(index_dir: Path, passed_over: Collection[str] = ()) -> Snapshot:
    """Load the live generation into memory; if it is damaged, the newest intact one.

    A writer may switch generations and prune the old one while we read; then we read
    the new one. A damaged generation is logged and passed over (``index`` rebuilds it),
    as are those named in `passed_over` (found damaged while answering).

    Raises:
        IndexMissing: There is no intact generation.
    """
    for _ in range(5):
        live = current_generation(index_dir)
        order = ([live] if live else []) + [n for n in _complete(index_dir) if n != live]
        order = [n for n in order if n not in passed_over]
        for name in order:
            folder = index_dir / "generations" / name
            try:
                if not intact(folder):
                    raise ValueError("its files are not the size they were written")
                snap = read_generation(folder, name)
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
