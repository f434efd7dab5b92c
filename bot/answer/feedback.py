"""What the community said about answers, and what it asked that the library lacks.

Stored in ``INDEX_DIR/feedback.sqlite``: each rating (👍 / 👎 on an excerpt shown for a
question, with the question's vector) and each declined question. Users are kept only as
salted hashes (the salt never leaves the index folder), entries older than the retention
period are dropped, and ``forget`` deletes a user's entries.

A 👎 lowers an excerpt for *similar* questions only (question vectors at least
:data:`SIMILAR` alike), and by a bounded amount: each user counts once however often they
vote, a vote fades with age (:data:`HALF_LIFE_DAYS`), and the total is capped, so one user
cannot bury a passage. Admins can revoke any rating. The quotes themselves never change:
only their order does.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.settings import Settings

#: Judgment: the question cosine above which a vote counts for another question.
SIMILAR = 0.8
#: Judgment: the score one user's 👎 takes off an excerpt...
PER_USER = 0.05
#: Judgment: ...and the most, however many users.
MAX_DEMOTION = 0.15
#: Judgment: a vote's weight halves in this many days.
HALF_LIFE_DAYS = 90.0
#: Judgment: declined questions at least this alike are one gap.
GROUP_SIMILAR = 0.75
#: Definition: seconds in a day.
DAY = 86400.0
#: Cost bound: how long a question waits for the store while another process writes to
#: it, before it is answered without the ratings (or without logging a decline).
QUESTION_WAIT = 0.5
#: Cost bound: how long a rating or an admin's listing waits for the store.
WRITE_WAIT = 5.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ratings (
    id INTEGER PRIMARY KEY, time REAL, user TEXT, server TEXT, question TEXT, qvec BLOB,
    vote INTEGER, doc_id TEXT, start INTEGER, end INTEGER, revoked INTEGER DEFAULT 0);
CREATE TABLE IF NOT EXISTS declined (
    id INTEGER PRIMARY KEY, time REAL, user TEXT, server TEXT, question TEXT, qvec BLOB);
CREATE TABLE IF NOT EXISTS salt (value TEXT);
"""


@dataclass(frozen=True)
class Asker:
    """Who asked, for the feedback store (the id is hashed before it is stored)."""

    user_id: str
    server: str | None = None


@dataclass(frozen=True)
class Rated:
    """One excerpt a user rated, as the store needs it."""

    doc_id: str
    start: int
    end: int


@dataclass(frozen=True)
class Gap:
    """Similar questions the library declined or answered badly, most asked first."""

    question: str
    count: int
    users: int
    declined: int
    rated_down: int
    last: str
    examples: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__, examples=list(self.examples))


class FeedbackStore:
    """The ratings and declined questions of one index folder.

    Args:
        path: The SQLite file.
        retention_days: Entries older than this are dropped.
    """

    def __init__(self, path: Path, retention_days: float = 365.0) -> None:
        self.path = path
        self.retention_days = retention_days
        self._lock = threading.Lock()
        self._salt: str | None = None
        self._created = False

    @classmethod
    def of(cls, settings: Settings) -> FeedbackStore:
        """The store of the settings' index folder (``INDEX_DIR/feedback.sqlite``)."""
        return cls(settings.index_dir / "feedback.sqlite", settings.feedback_retention_days)

    @contextmanager
    def _db(self, wait: float = WRITE_WAIT) -> Iterator[sqlite3.Connection]:
        with self._lock:
            # The schema once per store (and again if the file went), not on every question.
            new = not self._created or not self.path.exists()
            if new:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=wait)
            try:
                if new:
                    db.executescript(_SCHEMA)
                    self._created = True
                with db:
                    yield db
            finally:
                db.close()

    def user_key(self, user_id: str, wait: float = WRITE_WAIT) -> str:
        """A user id as stored: salted and hashed."""
        if self._salt is None:
            with self._db(wait) as db:
                row = db.execute("SELECT value FROM salt").fetchone()
                if row is None:
                    row = (secrets.token_hex(16),)
                    db.execute("INSERT INTO salt VALUES (?)", row)
            self._salt = str(row[0])
        return hashlib.sha256(f"{self._salt}:{user_id}".encode()).hexdigest()[:24]

    def _purge(self, db: sqlite3.Connection) -> None:
        cutoff = time.time() - self.retention_days * DAY
        db.execute("DELETE FROM ratings WHERE time < ?", (cutoff,))
        db.execute("DELETE FROM declined WHERE time < ?", (cutoff,))

    def rate(
        self, question: str, qvec: np.ndarray, rated: list[Rated], vote: int, user_id: str,
        server: str | None = None,
    ) -> list[int]:  # fmt: skip
        """Record a vote (+1 / -1) on excerpts shown for a question; a user's earlier vote
        on the same excerpt for the same question is replaced. Returns the rating ids."""
        user = self.user_key(user_id)
        blob = np.asarray(qvec, dtype=np.float32).tobytes()
        ids = []
        with self._db() as db:
            self._purge(db)
            for r in rated:
                db.execute(
                    "DELETE FROM ratings WHERE user=? AND question=? AND doc_id=? AND start=?",
                    (user, question, r.doc_id, r.start),
                )
                cur = db.execute(
                    "INSERT INTO ratings (time, user, server, question, qvec, vote, doc_id,"
                    " start, end) VALUES (?,?,?,?,?,?,?,?,?)",
                    (time.time(), user, server, question, blob, vote, r.doc_id, r.start, r.end),
                )
                ids.append(int(cur.lastrowid or 0))
        return ids

    def declined(self, question: str, qvec: np.ndarray, user_id: str, server: str | None) -> None:
        """Record a question the library declined."""
        blob = np.asarray(qvec, dtype=np.float32).tobytes()
        user = self.user_key(user_id, QUESTION_WAIT)  # before the lock: it takes it too
        with self._db(QUESTION_WAIT) as db:
            self._purge(db)
            db.execute(
                "INSERT INTO declined (time, user, server, question, qvec) VALUES (?,?,?,?,?)",
                (time.time(), user, server, question, blob),
            )

    def revoke(self, rating_id: int) -> bool:
        """Take a rating back (admins). Returns whether there was one."""
        with self._db() as db:
            cur = db.execute("UPDATE ratings SET revoked=1 WHERE id=? AND revoked=0", (rating_id,))
            return cur.rowcount > 0

    def forget(self, user_id: str) -> int:
        """Delete every entry of a user. Returns how many."""
        user = self.user_key(user_id)
        with self._db() as db:
            n = db.execute("DELETE FROM ratings WHERE user=?", (user,)).rowcount
            return n + db.execute("DELETE FROM declined WHERE user=?", (user,)).rowcount

    def demotions(self, qvec: np.ndarray, now: float | None = None) -> dict[Rated, float]:
        """How much each down-rated excerpt is lowered for this question (empty: none)."""
        if not self.path.exists():
            return {}
        with self._db(QUESTION_WAIT) as db:
            rows = db.execute(
                "SELECT user, qvec, doc_id, start, end, time FROM ratings"
                " WHERE vote < 0 AND revoked = 0"
            ).fetchall()
        now = time.time() if now is None else now
        weight: dict[tuple[Rated, str], float] = {}
        for user, blob, doc_id, start, end, when in rows:
            if float(np.frombuffer(blob, dtype=np.float32) @ qvec) < SIMILAR:
                continue
            fade = 0.5 ** ((now - when) / (HALF_LIFE_DAYS * DAY))
            key = (Rated(doc_id, start, end), user)
            weight[key] = max(weight.get(key, 0.0), fade)  # a user counts once
        out: dict[Rated, float] = {}
        for (rated, _), w in weight.items():
            out[rated] = min(MAX_DEMOTION, out.get(rated, 0.0) + PER_USER * w)
        return out

    def entries(self) -> list[dict[str, Any]]:
        """Every rating, newest first (for admins to review and revoke)."""
        if not self.path.exists():
            return []
        with self._db() as db:
            rows = db.execute(
                "SELECT id, time, server, question, vote, doc_id, start, end, revoked"
                " FROM ratings ORDER BY id DESC"
            ).fetchall()
        keys = ("id", "time", "server", "question", "vote", "doc_id", "start", "end", "revoked")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def gaps(self, limit: int = 20) -> list[Gap]:
        """Declined and down-rated questions, similar ones grouped, most asked first."""
        if not self.path.exists():
            return []
        with self._db() as db:
            self._purge(db)
            asked = [("declined", *r) for r in db.execute(
                "SELECT time, user, question, qvec FROM declined")]  # fmt: skip
            asked += [("rated_down", *r) for r in db.execute(
                "SELECT max(time), user, question, qvec FROM ratings WHERE vote < 0 AND"
                " revoked = 0 GROUP BY user, question")]  # fmt: skip
        return _group(asked)[:limit]


def _group(asked: list[tuple[Any, ...]]) -> list[Gap]:
    """Greedy grouping by question vector: each question joins the first group whose
    first question is at least :data:`GROUP_SIMILAR` alike."""
    groups: list[tuple[np.ndarray, list[tuple[Any, ...]]]] = []
    for item in sorted(asked, key=lambda r: r[1]):
        vec = np.frombuffer(item[4], dtype=np.float32)
        home = next((g for g in groups if float(g[0] @ vec) >= GROUP_SIMILAR), None)
        if home is None:
            groups.append((vec, [item]))
        else:
            home[1].append(item)
    out = []
    for _, items in groups:
        questions = [i[3] for i in items]
        out.append(Gap(
            question=max(questions, key=questions.count), count=len(items),  # first of the most
            users=len({i[2] for i in items}),
            declined=sum(i[0] == "declined" for i in items),
            rated_down=sum(i[0] == "rated_down" for i in items),
            last=time.strftime("%Y-%m-%d", time.gmtime(max(i[1] for i in items))),
            examples=tuple(dict.fromkeys(questions))[:5],
        ))  # fmt: skip
    return sorted(out, key=lambda g: (-g.count, -g.users, g.question))
