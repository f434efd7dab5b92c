"""An embedding cache keyed by model and passage hash, so reindexing re-embeds only what
changed (after simonw/llm's ``Collection.content_hash``)."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from bot.errors import StoreUnavailable, is_damaged, store_problem
from bot.index.embed import PassageVectors

log = logging.getLogger(__name__)


def _unusable(path: Path, exc: sqlite3.Error) -> StoreUnavailable:
    """The error a build reports when the cache cannot be written (the cache is kept)."""
    return StoreUnavailable(store_problem(exc, f"the embedding cache {path}"))


class EmbeddingCache:
    """Passage and sentence vectors stored in SQLite, shared by all index generations.

    Args:
        path: The SQLite file (created if missing).
        model_key: Which model the vectors come from; other models' rows are ignored.
    """

    def __init__(self, path: Path, model_key: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.model_key = model_key
        self.path = path
        try:
            self.db = self._open(path)
        except sqlite3.DatabaseError as exc:  # a damaged cache is only lost work: start anew
            # Only damage moves the cache aside: anything else (a full disk, a lock) says
            # nothing of its contents, and an intact cache lost costs a full re-embed.
            if not is_damaged(exc):
                raise _unusable(path, exc) from exc
            aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
            log.warning("embedding cache %s is damaged (%s); moved to %s", path, exc, aside)
            path.rename(aside)
            for suffix in ("-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            self.db = self._open(path)

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(path, timeout=60)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS vectors (model TEXT, hash TEXT, dim INTEGER,"
                " passage BLOB, sentences BLOB, PRIMARY KEY (model, hash))"
            )
            db.execute("CREATE TABLE IF NOT EXISTS sentences (key TEXT PRIMARY KEY, spans TEXT)")
            db.execute("SELECT 1 FROM vectors LIMIT 1").fetchone()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def get_sentences(self, key: str) -> list[tuple[int, int, int]] | None:
        """Cached sentence spans (start, end, paragraph) of a document version."""
        row = self.db.execute("SELECT spans FROM sentences WHERE key = ?", (key,)).fetchone()
        return [tuple(x) for x in json.loads(row[0])] if row else None  # type: ignore[misc]

    def put_sentences(self, key: str, spans: list[tuple[int, int, int]]) -> None:
        """Remember a document version's sentence spans (sentence splitting is slow).

        Raises:
            OSError: The cache cannot be written (a full disk); it keeps what it had.
        """
        self._write("INSERT OR REPLACE INTO sentences VALUES (?, ?)", [(key, json.dumps(spans))])

    def _write(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """One transaction: all rows or none."""
        try:
            with self.db:
                self.db.executemany(sql, rows)
        except sqlite3.DatabaseError as exc:
            raise _unusable(self.path, exc) from exc

    def get_many(self, hashes: Iterable[str]) -> dict[str, PassageVectors]:
        """The cached vectors for those passage hashes that are cached."""
        found: dict[str, PassageVectors] = {}
        wanted = list(dict.fromkeys(hashes))
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT hash, dim, passage, sentences FROM vectors"
                f" WHERE model = ? AND hash IN ({marks})",
                [self.model_key, *chunk],
            )
            for h, dim, p, s in rows:
                found[h] = PassageVectors(
                    np.frombuffer(p, dtype=np.float32).copy(),
                    np.frombuffer(s, dtype=np.float32).reshape(-1, dim).copy(),
                )
        return found

    def put_many(self, items: dict[str, PassageVectors]) -> None:
        """Store vectors (one transaction).

        Raises:
            OSError: The cache cannot be written (a full disk); it keeps what it had.
        """
        self._write(
            "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?, ?)",
            [
                (
                    self.model_key,
                    h,
                    int(v.passage.shape[0]),
                    v.passage.astype(np.float32).tobytes(),
                    v.sentences.astype(np.float32).tobytes(),
                )
                for h, v in items.items()
            ],
        )

    def close(self) -> None:
        """Close the database."""
        self.db.close()
