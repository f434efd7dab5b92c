"""The audit log: every change to the library, who made it, when, with the hashes.

A change is written down before it starts (its intent: what it will do, ``ok`` still
unknown) and completed when it ends, so a change cut short, even by ``kill -9``, is found
at the next start and finished or undone (:func:`bot.admin.library.recover`).

A log that cannot be used (damaged, locked, on a full or read-only disk) refuses every
change with :class:`AuditUnavailable`, which names the cause in one line; readers never
need it (:meth:`AuditLog.has_pending` only looks, read-only, without waiting).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.errors import StoreUnavailable, store_problem

#: Cost bound: how long a reader looks for interrupted changes before it answers anyway
#: (seconds; a writer holds the log for milliseconds).
READER_WAIT = 0.5
#: Cost bound: how long a change waits for the log while another process writes to it.
WRITER_WAIT = 60.0


class AuditUnavailable(StoreUnavailable):
    """The audit log cannot be used now; the message says why. No change may go ahead
    without its intent written down, so every change is refused until it can."""


@dataclass(frozen=True)
class AuditEntry:
    """One recorded action (``ok`` is None while it is under way, or was cut short)."""

    at: str
    who: str
    action: str
    target: str
    ok: bool | None
    detail: dict[str, Any]
    id: int = 0


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class AuditLog:
    """A SQLite table in the index folder: rows are added, and an intent's row completed
    once; nothing is ever deleted."""

    FILE = "audit.sqlite"
    _SCHEMA = ("CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY, at TEXT, who TEXT,"
               " action TEXT, target TEXT, ok INTEGER, detail TEXT)")  # fmt: skip

    def __init__(self, index_dir: Path, wait: float = WRITER_WAIT) -> None:
        self.path = index_dir / self.FILE
        self.wait = wait

    @classmethod
    def has_pending(cls, index_dir: Path) -> bool:
        """Whether a change was written down and never completed: looked up read-only,
        waiting at most :data:`READER_WAIT` (what a reader checks before it answers).

        Raises:
            AuditUnavailable: The log cannot be read.
        """
        path = index_dir / cls.FILE
        if not path.exists():
            return False
        with _guarded(path):
            db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                                 timeout=READER_WAIT)  # fmt: skip
            try:
                tables = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'audit'")
                if tables.fetchone() is None:
                    return False
                return db.execute("SELECT 1 FROM audit WHERE ok IS NULL").fetchone() is not None
            finally:
                db.close()

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """A connection to the log (created with its table on first use), any failure
        turned into :class:`AuditUnavailable`."""
        with _guarded(self.path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=self.wait)
            try:
                with db:
                    db.execute(self._SCHEMA)
                    yield db
            finally:
                db.close()

    def _write(self, sql: str, values: tuple[Any, ...]) -> int:
        with self._db() as db:
            return int(db.execute(sql, values).lastrowid or 0)

    def record(self, who: str, action: str, target: str, ok: bool, **detail: Any) -> None:
        """Append an entry for something already done (or refused)."""
        self._write(
            "INSERT INTO audit (at, who, action, target, ok, detail) VALUES (?,?,?,?,?,?)",
            (_now(), who, action, target, int(ok), json.dumps(detail, default=str)),
        )

    def begin(self, who: str, action: str, target: str, **detail: Any) -> int:
        """Write down a change about to start (durably, before anything is touched);
        returns its id for :meth:`finish`."""
        return self._write(
            "INSERT INTO audit (at, who, action, target, ok, detail) VALUES (?,?,?,?,NULL,?)",
            (_now(), who, action, target, json.dumps(detail, default=str)),
        )

    def note(self, entry_id: int, **detail: Any) -> None:
        """Add to an intent's details as the change learns them (e.g. its backup)."""
        self._update(entry_id, None, None, detail)

    def finish(self, entry_id: int, ok: bool, target: str | None = None, **detail: Any) -> None:
        """Complete an intent: whether it happened, and what more is known."""
        self._update(entry_id, ok, target, detail)

    def _update(
        self, entry_id: int, ok: bool | None, target: str | None, detail: dict[str, Any]
    ) -> None:
        with self._db() as db:
            row = db.execute("SELECT target, detail FROM audit WHERE id = ?", (entry_id,))
            old_target, old = row.fetchone()
            merged = json.dumps({**json.loads(old), **detail}, default=str)
            db.execute(
                "UPDATE audit SET ok = ?, target = ?, detail = ? WHERE id = ?",
                (None if ok is None else int(ok), target or old_target, merged, entry_id),
            )

    def entries(self, limit: int = 100) -> list[AuditEntry]:
        """The latest entries, newest first."""
        return self._select("ORDER BY id DESC LIMIT ?", (limit,))

    def pending(self) -> list[AuditEntry]:
        """Changes written down and never completed, oldest first."""
        return self._select("WHERE ok IS NULL ORDER BY id", ())

    def _select(self, where: str, values: tuple[Any, ...]) -> list[AuditEntry]:
        with self._db() as db:
            rows = db.execute(
                f"SELECT at, who, action, target, ok, detail, id FROM audit {where}", values
            ).fetchall()
        return [
            AuditEntry(
                r[0], r[1], r[2], r[3], None if r[4] is None else bool(r[4]), json.loads(r[5]), r[6]
            )  # fmt: skip
            for r in rows
        ]


@contextmanager
def _guarded(path: Path) -> Iterator[None]:
    """Any failure to use the log at `path` as :class:`AuditUnavailable`, naming why."""
    try:
        yield
    except (sqlite3.Error, OSError) as exc:
        raise AuditUnavailable(store_problem(exc, f"the audit log {path}")) from exc
