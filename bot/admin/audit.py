"""The audit log: every change to the library, who made it, when, with the hashes.

A change is written down before it starts (its intent: what it will do, ``ok`` still
unknown) and completed when it ends, so a change cut short, even by ``kill -9``, is found
at the next start and finished or undone (:func:`bot.admin.library.recover`).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


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

    def __init__(self, index_dir: Path) -> None:
        index_dir.mkdir(parents=True, exist_ok=True)
        self.path = index_dir / self.FILE
        with self._db() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY, at TEXT, who TEXT,"
                " action TEXT, target TEXT, ok INTEGER, detail TEXT)"
            )

    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=60)

    def _write(self, sql: str, values: tuple[Any, ...]) -> int:
        db = self._db()
        try:
            with db:
                return int(db.execute(sql, values).lastrowid or 0)
        finally:
            db.close()

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
        db = self._db()
        try:
            with db:
                row = db.execute("SELECT target, detail FROM audit WHERE id = ?", (entry_id,))
                old_target, old = row.fetchone()
                merged = json.dumps({**json.loads(old), **detail}, default=str)
                db.execute(
                    "UPDATE audit SET ok = ?, target = ?, detail = ? WHERE id = ?",
                    (None if ok is None else int(ok), target or old_target, merged, entry_id),
                )
        finally:
            db.close()

    def entries(self, limit: int = 100) -> list[AuditEntry]:
        """The latest entries, newest first."""
        return self._select("ORDER BY id DESC LIMIT ?", (limit,))

    def pending(self) -> list[AuditEntry]:
        """Changes written down and never completed, oldest first."""
        return self._select("WHERE ok IS NULL ORDER BY id", ())

    def _select(self, where: str, values: tuple[Any, ...]) -> list[AuditEntry]:
        db = self._db()
        try:
            rows = db.execute(
                f"SELECT at, who, action, target, ok, detail, id FROM audit {where}", values
            ).fetchall()
        finally:
            db.close()
        return [
            AuditEntry(
                r[0], r[1], r[2], r[3], None if r[4] is None else bool(r[4]), json.loads(r[5]), r[6]
            )  # fmt: skip
            for r in rows
        ]
