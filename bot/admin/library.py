"""Library administration: add, edit and remove essays, reindex; audited, all-or-nothing.

The Discord admin commands and the CLI call exactly these methods. Every change holds the
index lock from validation to the new generation going live, so two admins cannot
interleave; each is written to the audit log before anything is touched and carried out
by a :class:`~bot.admin.transaction.Transaction` (the one order, and its undoing).
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.admin.audit import READER_WAIT, WRITER_WAIT, AuditLog, AuditUnavailable
from bot.admin.transaction import RejectedError, Transaction, Unfinished
from bot.answer.engine import Engine
from bot.errors import UserError, store_problem
from bot.index.build import IndexReport, lock_for
from bot.index.generations import Progress, no_progress
from bot.ingest.convert import Converted, convert_upload
from bot.ingest.decoding import read_limited
from bot.ingest.documents import (
    library_files,
    parse_document,
    read_document,
    slugify,
    split_front_matter,
)
from bot.ingest.model import META_KEYS, Document, DocumentError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Change:
    """What an administrative action did."""

    action: str
    doc_id: str
    title: str
    passages: int
    report: IndexReport

    def summary(self) -> str:
        """A short human-readable report."""
        verb = {"add": "Added", "edit": "Updated", "remove": "Removed"}.get(self.action, "Done")
        head = f"{verb} {self.doc_id} ({self.title})"
        if self.action != "remove":
            head += f": {self.passages} passages"
        return f"{head}.\n{self.report.summary()}"


def _body_hash(doc: Document) -> str:
    """Identifies an essay's text whatever its metadata, whitespace or letter case."""
    return hashlib.sha256(" ".join(doc.text.split()).casefold().encode()).hexdigest()


def recover(engine: Engine) -> list[str]:
    """Finish or undo what a killed process left half-done, where it can (see
    :meth:`~bot.admin.transaction.Transaction.recover`); front ends call it at start,
    before serving. It never stops or holds up a reader: it only looks (read-only,
    briefly) unless a change was left open, and a log it cannot use or a repair that
    fails is one warning (the next admin action tries again, and refuses until it
    can). Touches nothing where no change was ever made.

    Returns:
        What was done, a line per change.
    """
    index_dir = engine.settings.index_dir
    try:
        if not AuditLog.has_pending(index_dir):
            return []
        admin = LibraryAdmin(engine, audit_wait=READER_WAIT)
        return admin.recover()
    except Exception as exc:  # noqa: BLE001 - a reader answers whatever went wrong here
        if isinstance(exc, UserError):
            why = str(exc)
        elif isinstance(exc, OSError | sqlite3.Error):
            why = store_problem(exc, str(getattr(exc, "filename", None) or index_dir))
        else:
            why = _reason(exc)
        log.warning("could not look for interrupted library changes (%s); answering anyway, "
                    "and the next admin action tries again", why)  # fmt: skip
        return []


class LibraryAdmin:
    """Administrative actions on an engine's library folder and index.

    Args:
        engine: The engine whose settings name the library and index folders.
    """

    def __init__(self, engine: Engine, audit_wait: float = WRITER_WAIT) -> None:
        self.engine = engine
        self.settings = engine.settings
        self.audit = AuditLog(self.settings.index_dir, wait=audit_wait)
        self.transaction = Transaction(engine, self.audit)

    # --- helpers ----------------------------------------------------------------------

    def _documents(self) -> dict[str, tuple[Path, Document]]:
        docs: dict[str, tuple[Path, Document]] = {}
        for path in library_files(self.settings.seeds_dir):
            try:
                doc = read_document(path)
            except DocumentError:
                continue
            docs.setdefault(doc.meta.doc_id, (path, doc))
        return docs

    def _find(self, doc_id: str) -> tuple[Path, Document]:
        docs = self._documents()
        if doc_id in docs:
            return docs[doc_id]
        listing = ", ".join(sorted(docs)) or "(the library is empty)"
        raise RejectedError(f"no essay with id {doc_id!r}; essays: {listing}")

    def _passages(self, doc_id: str) -> int:
        return self.engine.snapshot().passage_counts().get(doc_id, 0)

    @contextmanager
    def _audited(
        self, who: str, action: str, target: str, locked: bool = True, **detail: Any
    ) -> Iterator[Any]:
        """Hold the writers' lock, write the action's intent to the audit log before
        anything is touched, and complete it whatever happens: its details on success,
        the one-line reason on failure. The body gets the intent's id and a dict to add
        details (and a final ``target``) to. A change whose undoing failed stays an
        intent, for :func:`recover`. (The lock comes first: an intent is open only while
        its writer holds the lock, or after its writer died.) A reindex, which changes no
        file, lets the build take the lock (and say how long it waited)."""
        with lock_for(self.settings) if locked else nullcontext():
            repaired = self.transaction.repair() if locked else self.transaction.recover()
            for line in repaired:  # what readers left for the next admin action
                log.warning("recovered an interrupted change: %s", line)
            intent = self.audit.begin(who, action, target, **detail)
            record: dict[str, Any] = {}
            try:
                yield intent, record
            except Unfinished as exc:
                self._complete(intent, None, reason=_reason(exc.__cause__ or exc))
                raise (exc.__cause__ or exc) from None
            except BaseException as exc:
                self._complete(intent, False, record.pop("target", None),
                               reason=_reason(exc), **record)  # fmt: skip
                raise
            self.audit.finish(intent, True, record.pop("target", None), **record)

    def _complete(self, intent: int, ok: bool | None, target: str | None = None,
                  **detail: Any) -> None:  # fmt: skip
        """Record how a failed change ended, if the log can be written; else leave its
        intent open (the next admin action finishes or undoes it) and let the change's
        own failure be what the admin reads."""
        try:
            if ok is None:
                self.audit.note(intent, **detail)
            else:
                self.audit.finish(intent, ok, target, **detail)
        except AuditUnavailable as exc:
            log.error("could not record how change %d ended: %s", intent, exc)

    def recover(self) -> list[str]:
        """Finish or undo the changes a killed process left half-done
        (:meth:`~bot.admin.transaction.Transaction.recover`).

        Returns:
            What was done, a line per change.
        """
        return self.transaction.recover()

    # --- actions ----------------------------------------------------------------------

    def add(
        self,
        filename: str,
        data: bytes,
        who: str = "cli",
        progress: Progress = no_progress,
        **meta: Any,
    ) -> Change:
        """Validate an uploaded essay, store it in the library, index it incrementally.

        Args:
            filename: The upload's name (its extension decides the format).
            data: The file's bytes.
            who: Who asked ("cli" or a Discord user), for the audit log.
            progress: Told how indexing goes (stage, done, total).
            **meta: Metadata that wins over the file's (title, author, date, source, url).

        Returns:
            What was done.

        Raises:
            RejectedError: The file was refused; nothing changed.
        """
        sha = hashlib.sha256(data).hexdigest()
        try:
            with self._audited(who, "add", filename, sha256=sha) as (intent, record):
                change, doc = self._add(intent, filename, data, meta, progress)
                record.update(
                    target=change.doc_id, file=filename, content_hash=doc.content_hash,
                    passages=change.passages, embedded=change.report.passages_embedded,
                )  # fmt: skip
                return change
        except DocumentError as exc:
            if isinstance(exc, RejectedError):
                raise
            raise RejectedError(str(exc)) from exc

    def _check_upload(self, name: str, data: bytes) -> None:
        limit = self.settings.max_upload_bytes
        if len(data) > limit:
            raise RejectedError(
                f"{name} is {len(data) / 1e6:.1f} MB; the limit is {limit / 1e6:.1f} MB"
            )
        if not data.strip():
            raise RejectedError(f"{name} is empty")

    def _check_essay(self, name: str, doc: Document, existing: dict[str, Any]) -> None:
        prose = sum(p.end - p.start for p in doc.paragraphs)
        if prose < self.settings.min_essay_chars:
            raise RejectedError(
                f"{name} has only {prose} characters of prose; "
                f"the minimum is {self.settings.min_essay_chars}"
            )
        body = _body_hash(doc)
        for other_id, (_, other) in existing.items():
            if _body_hash(other) == body:
                raise RejectedError(
                    f"{name} is the same text as essay {other_id!r} ({other.meta.title})"
                )

    def _add(
        self, intent: int, filename: str, data: bytes, meta: dict[str, Any], progress: Progress
    ) -> tuple[Change, Document]:
        name = Path(filename).name or "upload"
        self._check_upload(name, data)
        converted = convert_upload(name, data)
        converted.meta.update({k: v for k, v in meta.items() if k in META_KEYS and v})
        existing = self._documents()
        meta_id = converted.meta.get("id") or converted.meta.get("title") or Path(name).stem
        base = slugify(str(meta_id))
        doc_id, n = base, 2
        # Neither an essay's id nor any file's name (an unparseable draft is a file too).
        taken = {p.stem.casefold() for p in self.settings.seeds_dir.glob("*")}
        while doc_id in existing or doc_id.casefold() in taken:
            doc_id, n = f"{base}-{n}", n + 1
        converted.meta["id"] = doc_id
        text = converted.to_markdown()
        doc = parse_document(text, doc_id=doc_id, path=name)
        self._check_essay(name, doc, existing)
        target = self.settings.seeds_dir / f"{doc_id}.md"
        self.settings.seeds_dir.mkdir(parents=True, exist_ok=True)
        report = self.transaction.commit(intent, target, text.encode("utf-8"), None, progress)
        return Change("add", doc_id, doc.meta.title, self._passages(doc_id), report), doc

    def add_path(self, path: Path, who: str = "cli", **meta: Any) -> Change:
        """Add an essay from a file on disk (see :meth:`add`)."""
        try:
            data = read_limited(path, self.settings.max_upload_bytes, within=path.parent)
        except DocumentError as exc:
            self.audit.record(who, "add", path.name, False, reason=str(exc))
            raise RejectedError(str(exc)) from exc
        return self.add(path.name, data, who, **meta)

    def add_folder(self, folder: Path, who: str = "cli") -> list[Change | RejectedError]:
        """Add every supported file of a folder; each one accepted or refused on its own."""
        results: list[Change | RejectedError] = []
        for path in sorted(p for p in folder.iterdir() if p.is_file()):
            try:
                results.append(self.add_path(path, who))
            except RejectedError as exc:
                results.append(exc)
        return results

    def edit(self, doc_id: str, who: str = "cli", **meta: Any) -> Change:
        """Correct an essay's metadata; the text and its embeddings are kept.

        Raises:
            RejectedError: Unknown essay or no change given.
        """
        changes = {k: v for k, v in meta.items() if k in META_KEYS and v is not None}
        with self._audited(who, "edit", doc_id, changes=changes) as (intent, record):
            if not changes:
                raise RejectedError("nothing to change: give --title, --author, --date, ...")
            path, _ = self._find(doc_id)
            original = path.read_bytes()
            front, body = split_front_matter(original.decode("utf-8"), path.name)
            front.update(changes)
            front.setdefault("id", doc_id)
            text = Converted(front, body).to_markdown()
            try:
                parse_document(text, doc_id=doc_id, path=path.name)  # still valid?
            except DocumentError as exc:
                raise RejectedError(str(exc)) from exc
            report = self.transaction.commit(
                intent, path, text.encode("utf-8"), original, no_progress
            )
            doc = read_document(path)
            record["content_hash"] = doc.content_hash
        return Change("edit", doc_id, doc.meta.title, self._passages(doc_id), report)

    def remove(self, doc_id: str, who: str = "cli", progress: Progress = no_progress) -> Change:
        """Take an essay out of the library (a copy is kept under INDEX_DIR/removed/).

        Raises:
            RejectedError: Unknown essay.
        """
        with self._audited(who, "remove", doc_id) as (intent, record):
            path, doc = self._find(doc_id)
            report = self.transaction.commit(intent, path, None, path.read_bytes(), progress)
            record.update(content_hash=doc.content_hash)
        return Change("remove", doc_id, doc.meta.title, 0, report)

    def reindex(
        self, who: str = "cli", force: bool = False, progress: Progress = no_progress
    ) -> IndexReport:
        """Rebuild the index from the library folder, reporting what changed.

        Args:
            who: Who asked, for the audit log.
            force: Write a new generation even when nothing changed.
            progress: Told how the build goes (stage, done, total).
        """
        with self._audited(who, "reindex", "library", locked=False) as (_, record):
            report = self.engine.index(force=force, progress=progress)
            record.update(
                generation=report.generation, added=report.added, changed=report.changed,
                removed=report.removed, embedded=report.passages_embedded,
                reused=report.passages_reused,
            )  # fmt: skip
        return report


def _reason(exc: BaseException) -> str:
    """A failure in one line, for the audit log."""
    if isinstance(exc, DocumentError):
        return str(exc)
    lines = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {lines[0]}" if lines else exc.__class__.__name__
