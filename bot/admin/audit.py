"""The audit log: every change to the library, who made it, when, with the hashes."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class AuditEntry:
    """One recorded action."""

    at: str
    who: str
    action: str
    target: str
    ok: bool
    detail: dict[str, Any]


class AuditLog:
    """An append-only SQLite table in the index folder."""

    def __init__(self, index_dir: Path) -> None:
        index_dir.mkdir(parents=True, exist_ok=True)
        self.path = index_dir / "audit.sqlite"
        with self._db() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY, at TEXT, who TEXT,"
                " action TEXT, target TEXT, ok INTEGER, detail TEXT)"
            )

    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=60)

    def record(self, who: str, action: str, target: str, ok: bool, **detail: Any) -> None:
        """Append an entry."""
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        db = self._db()
        try:
            with db:
                db.execute(
                    "INSERT INTO audit (at, who, action, target, ok, detail) VALUES (?,?,?,?,?,?)",
                    (at, who, action, target, int(ok), json.dumps(detail, default=str)),
                )
        finally:
            db.close()

    def entries(self, limit: int = 100) -> list[AuditEntry]:
        """The latest entries, newest first."""
        db = self._db()
        try:
            rows = db.execute(
                "SELECT at, who, action, target, ok, detail FROM audit ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        finally:
            db.close()
        return [AuditEntry(r[0], r[1], r[2], r[3], bool(r[4]), json.loads(r[5])) for r in rows]
