"""Library administration: add, edit and remove essays, reindex; audited, all-or-nothing.

The Discord admin commands and the CLI call exactly these functions. Every change holds the
index lock from validation to the new generation going live, so two admins cannot
interleave, and every change goes in one order (:meth:`LibraryAdmin._commit`):

1. its intent is written to the audit log (what it will do, and where it keeps a copy);
2. a copy of what it replaces or removes is kept under ``INDEX_DIR/removed/``;
3. the library file is written beside its place, on the library's own file system
   (write, fsync, then link or rename: never a link across file systems), or, for a
   remove, the index goes live without the essay first;
4. the index goes live (or, for a remove, the file leaves the folder);
5. the intent is completed.

The live index never serves an essay whose file is not in the folder. A failure undoes
the change (and switches the index back if it had gone live); a process killed half-way
leaves an intent that :func:`recover` finishes or undoes at the next start, before
anything is served.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import Timeout

from bot.admin.audit import AuditEntry, AuditLog
from bot.answer.engine import Engine
from bot.index.build import IndexReport, lock_for
from bot.index.generations import Progress, fsync_dir, no_progress, read_manifest
from bot.ingest.convert import Converted, convert_upload
from bot.ingest.documents import (
    META_KEYS,
    Document,
    DocumentError,
    document_from_bytes,
    library_files,
    parse_document,
    read_document,
    read_limited,
    slugify,
    split_front_matter,
)

log = logging.getLogger(__name__)
#: Hidden in the library folder (never indexed): a file being written to its place.
PENDING = ".pending-"


class RejectedError(DocumentError):
    """An essay was refused; the message is the one-line reason. Nothing was changed."""


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


class _Unfinished(Exception):
    """A failed change could not be undone either; its intent stays open for
    :func:`recover` (the cause is the change's own failure)."""


def recover(engine: Engine) -> list[str]:
    """Finish or undo what a killed process left half-done (see
    :meth:`LibraryAdmin.recover`); front ends call it at start, before serving. Touches
    nothing where no change was ever made."""
    if not (engine.settings.index_dir / AuditLog.FILE).exists():
        return []
    return LibraryAdmin(engine).recover()


class LibraryAdmin:
    """Administrative actions on an engine's library folder and index.

    Args:
        engine: The engine whose settings name the library and index folders.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.settings = engine.settings
        self.audit = AuditLog(self.settings.index_dir)

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
            intent = self.audit.begin(who, action, target, **detail)
            record: dict[str, Any] = {}
            try:
                yield intent, record
            except _Unfinished as exc:
                self.audit.note(intent, reason=_reason(exc.__cause__ or exc))
                raise (exc.__cause__ or exc) from None
            except BaseException as exc:
                self.audit.finish(intent, False, record.pop("target", None),
                                  reason=_reason(exc), **record)  # fmt: skip
                raise
            self.audit.finish(intent, True, record.pop("target", None), **record)

    def _commit(
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
                raise _Unfinished() from exc
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
        """Finish or undo the changes a killed process left half-done, so that folder
        and index agree before anything is served: a change the live index holds is
        finished, any other undone. Skipped while another process holds the writers'
        lock (its change is under way, not cut short).

        Returns:
            What was done, a line per change.
        """
        if not self.audit.pending():
            return []
        lock = lock_for(self.settings)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return []
        try:
            return [self._repair(entry) for entry in self.audit.pending()]
        finally:
            lock.release()

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
        report = self._commit(intent, target, text.encode("utf-8"), None, progress)
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
            report = self._commit(intent, path, text.encode("utf-8"), original, no_progress)
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
            report = self._commit(intent, path, None, path.read_bytes(), progress)
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
