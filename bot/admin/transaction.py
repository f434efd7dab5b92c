"""One library file and the index, changed together or not at all, on any file system,
under any crash.

Every change goes in one order (:meth:`Transaction.commit`):

1. its intent is written to the audit log (what it will do, and where it keeps a copy);
2. a copy of what it replaces or removes is kept under ``INDEX_DIR/removed/``;
3. the library file is written beside its place, on the library's own file system
   (write, fsync, then link or rename: never a link across file systems), or, for a
   remove, the index goes live without the essay first;
4. the index goes live (or, for a remove, the file leaves the folder);
5. the intent is completed (by the caller, :class:`~bot.admin.library.LibraryAdmin`).

The live index never serves an essay whose file is not in the folder. A failure undoes
the change (and switches the index back if it had gone live); a process killed half-way
leaves an intent that :meth:`Transaction.recover` finishes or undoes at the next start,
before anything is served.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from filelock import Timeout

from bot.admin.audit import AuditEntry, AuditLog
from bot.answer.engine import Engine
from bot.index.build import IndexReport, lock_for
from bot.index.generations import Progress, fsync_dir, read_manifest
from bot.ingest.documents import document_from_bytes
from bot.ingest.model import DocumentError

log = logging.getLogger(__name__)
#: Hidden in the library folder (never indexed): a file being written to its place.
PENDING = ".pending-"


class RejectedError(DocumentError):
    """An essay was refused; the message is the one-line reason. Nothing was changed."""


class Unfinished(Exception):
    """A failed change could not be undone either; its intent stays open for
    :meth:`Transaction.recover` (the cause is the change's own failure)."""


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_synced(path: Path, data: bytes) -> None:
    """A new file (never an existing one) with its bytes on disk."""
    with path.open("xb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _place(path: Path, data: bytes, intent: int, replace: bool) -> None:
    """Put a library file in place on the library's own file system: written beside its
    place under a hidden name, synced, then linked (a new file: never over one that
    appeared meanwhile) or renamed over the old one.

    Raises:
        FileExistsError: A new file's place was taken meanwhile.
        OSError: The folder cannot be written (read-only, full); nothing was changed.
    """
    pending = path.with_name(f"{PENDING}{intent}-{path.name}")
    _write_synced(pending, data)
    try:
        if replace:
            os.replace(pending, path)
        else:
            try:
                os.link(pending, path)
            except FileExistsError:
                raise
            except OSError as exc:  # a file system without hard links (some shares)
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                    raise
                if path.exists():
                    raise FileExistsError(errno.EEXIST, "exists", str(path)) from exc
                os.rename(pending, path)
    finally:
        pending.unlink(missing_ok=True)
    fsync_dir(path.parent)


def _bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


@dataclass(frozen=True)
class _Plan:
    """What a change does to one library file, as its audit intent records it: the
    checksum of the file's new bytes and the essay's content hash once live (None: the
    file leaves the folder), and the copy kept of what it held (None: it is new)."""

    path: Path
    doc_id: str
    new_sha: str | None
    content_hash: str | None
    backup: Path | None


class Transaction:
    """Changes one library file and the index in the one order, or undoes them.

    Args:
        engine: The engine whose settings name the library and index folders, and
            which indexes.
        audit: The audit log the intents are written to.
    """

    def __init__(self, engine: Engine, audit: AuditLog) -> None:
        self.engine = engine
        self.settings = engine.settings
        self.audit = audit

    def commit(
        self, intent: int, path: Path, new: bytes | None, old: bytes | None, progress: Progress
    ) -> IndexReport:
        """Change one library file and the index in the one order (see the module's
        docstring); on failure, undo both.

        Args:
            intent: The audit log's intent for the change.
            path: The library file.
            new: Its new bytes (None: it leaves the folder).
            old: What it holds now (None: it is new).
            progress: Told how indexing goes.

        Raises:
            RejectedError: The index went on without the essay (e.g. over
                MAX_ESSAY_SENTENCES), or its place was taken meanwhile; undone.
        """
        essay = document_from_bytes(new if new is not None else old or b"", path)
        plan = _Plan(
            path, essay.meta.doc_id, None if new is None else _sha(new),
            None if new is None else essay.content_hash,
            None if old is None else self._backup_name(intent, path),
        )  # fmt: skip
        self.audit.note(intent, file=path.name, doc_id=plan.doc_id, new_sha=plan.new_sha,
                        content_hash=plan.content_hash, backup=plan.backup)  # fmt: skip
        if old is not None and plan.backup is not None:
            plan.backup.parent.mkdir(parents=True, exist_ok=True)
            _write_synced(plan.backup, old)
        try:
            return self._apply(intent, plan, new, progress)
        except BaseException as exc:
            try:
                self._undo(intent, plan)
            except BaseException as failed:
                log.error("could not undo %s (%s); the next start will", path.name, failed)
                raise Unfinished() from exc
            raise

    def _apply(
        self, intent: int, plan: _Plan, new: bytes | None, progress: Progress
    ) -> IndexReport:
        if new is None:  # out of the index first: it never serves a file that is gone
            report = self.engine.index(staged={plan.path: None}, progress=progress)
            plan.path.unlink()
            fsync_dir(plan.path.parent)
            return report
        try:
            _place(plan.path, new, intent, replace=plan.backup is not None)
        except FileExistsError:
            raise RejectedError(f"{plan.path.name} appeared in the library meanwhile") from None
        report = self.engine.index(progress=progress)
        if not self._went_live(plan):  # the index went on without it
            mine = (f"{plan.path.name}:", f"{plan.path.name} ", f"{plan.path.stem} ")
            refused = [r for r in report.skipped if r.startswith(mine)]
            raise RejectedError(refused[0] if refused else f"{plan.path.name} was not indexed")
        return report

    def _went_live(self, plan: _Plan) -> bool:
        """Whether the live index holds the change: the essay's new version, or, for a
        remove, no essay of that id."""
        docs = (read_manifest(self.settings.index_dir) or {}).get("docs", {})
        if plan.content_hash is None:
            return plan.doc_id not in docs
        return bool(docs.get(plan.doc_id) == plan.content_hash)

    def _undo(self, intent: int, plan: _Plan) -> None:
        """Put the library file back as it was (only if it holds what this change wrote:
        never someone else's file), then switch the index back if it had gone live."""
        current = _bytes(plan.path)
        if plan.backup is None:
            if current is not None and _sha(current) == plan.new_sha:
                plan.path.unlink()
                fsync_dir(plan.path.parent)
        else:
            old = plan.backup.read_bytes()
            if current != old:
                _place(plan.path, old, intent, replace=current is not None)
        if self._went_live(plan):
            self.engine.index()

    def _backup_name(self, intent: int, path: Path) -> Path:
        """Where the copy of what a change replaces or removes is kept: named by the
        time and the change's audit id, so no two changes share one."""
        stamp = time.strftime("%Y%m%dT%H%M%S")
        return self.settings.index_dir / "removed" / f"{stamp}-{intent}-{path.name}"

    def recover(self) -> list[str]:
        """Finish or undo the changes a killed process left half-done (:meth:`repair`),
        unless another process holds the writers' lock (its change is under way, not cut
        short): then nothing is done and nothing waits.

        Returns:
            What was done, a line per change.

        Raises:
            AuditUnavailable: The audit log cannot be used.
        """
        lock = lock_for(self.settings)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return []
        try:
            return self.repair()
        finally:
            lock.release()

    def repair(self) -> list[str]:
        """Finish or undo every change the audit log holds open, so that folder and index
        agree: a change the live index holds is finished, any other undone. The caller
        holds the writers' lock.

        Returns:
            What was done, a line per change.

        Raises:
            AuditUnavailable: The audit log cannot be used.
        """
        return [self._repair(entry) for entry in self.audit.pending()]

    def _repair(self, entry: AuditEntry) -> str:
        d = entry.detail
        for leftover in self.settings.seeds_dir.glob(f"{PENDING}{entry.id}-*"):
            leftover.unlink(missing_ok=True)
        if "file" not in d:  # cut short before it touched anything
            self.audit.finish(entry.id, False, reason="interrupted before any change")
            return f"{entry.action} {entry.target}: interrupted before any change"
        backup = Path(d["backup"]) if d.get("backup") else None
        path = self.settings.seeds_dir / d["file"]
        plan = _Plan(path, d["doc_id"], d.get("new_sha"), d.get("content_hash"), backup)
        if self._went_live(plan):
            current = _bytes(plan.path)
            if plan.new_sha is None and current is not None:
                plan.path.unlink()  # a remove whose index had gone live
                fsync_dir(plan.path.parent)
            self.audit.finish(entry.id, True, recovered="completed at the next start")
            return f"{entry.action} {d['doc_id']}: completed (it had gone live)"
        self._undo(entry.id, plan)
        self.audit.finish(entry.id, False, reason="interrupted; undone at the next start")
        return f"{entry.action} {d['doc_id']}: undone (it had not gone live)"
