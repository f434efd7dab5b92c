"""Library administration: add, edit and remove essays, reindex; audited, all-or-nothing.

The Discord admin commands and the CLI call exactly these functions. Every change holds the
index lock from validation to the new generation going live, so two admins cannot
interleave; a rejected or failed change leaves the library folder as it was.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.admin.audit import AuditLog
from bot.answer.engine import Engine
from bot.index.build import IndexReport, lock_for
from bot.index.generations import Progress, no_progress
from bot.ingest.convert import Converted, convert_upload
from bot.ingest.documents import (
    META_KEYS,
    Document,
    DocumentError,
    library_files,
    parse_document,
    read_document,
    read_limited,
    slugify,
    split_front_matter,
)


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


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


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
    def _audited(self, who: str, action: str, target: str, **detail: Any) -> Iterator[Any]:
        """Record the action in the audit log whatever happens: its details on success,
        the one-line reason on failure. The body may add details (and a final ``target``)
        to the yielded dict."""
        record: dict[str, Any] = {"target": target, **detail}
        try:
            yield record
        except BaseException as exc:
            self.audit.record(who, action, record.pop("target"), False, reason=_reason(exc),
                              **record)  # fmt: skip
            raise
        self.audit.record(who, action, record.pop("target"), True, **record)

    def _apply(self, write: Callable[[], object], undo: Callable[[], object]) -> IndexReport:
        """Change the library folder, then reindex; if the index does not go live, undo
        the change so folder and index agree again."""
        write()
        try:
            return self.engine.index()
        except BaseException:
            undo()
            raise

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
            with self._audited(who, "add", filename, sha256=sha) as record:
                with lock_for(self.settings):
                    change, doc = self._add(filename, data, meta, progress)
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
        self, filename: str, data: bytes, meta: dict[str, Any], progress: Progress
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
        report = self._go_live(target, text, progress)
        return Change("add", doc_id, doc.meta.title, self._passages(doc_id), report), doc

    def _go_live(self, target: Path, text: str, progress: Progress) -> IndexReport:
        """Index a new essay from a staging copy, then move it into the library folder.

        The library folder changes only after the index that includes the essay is live:
        a crash (even ``kill -9``) before that leaves the folder as it was, and the next
        reindex drops a generation whose file never arrived.
        """
        staging = self.settings.index_dir / "staging"
        shutil.rmtree(staging, ignore_errors=True)  # what an interrupted add left
        staging.mkdir(parents=True)
        staged = staging / target.name
        staged.write_text(text, encoding="utf-8")
        try:
            report = self.engine.index(staged={target: staged}, progress=progress)
            mine = (f"{target.name}:", f"{target.name} ", f"{target.stem} ")
            refused = [r for r in report.skipped if r.startswith(mine)]
            if refused:  # e.g. over MAX_ESSAY_SENTENCES: the index went on without it
                raise RejectedError(refused[0])
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(staged, target)  # never replaces a file: fails if one appeared
        except FileExistsError:
            self.engine.index()
            raise RejectedError(f"{target.name} appeared in the library meanwhile") from None
        finally:
            staged.unlink(missing_ok=True)
        return report

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
        with self._audited(who, "edit", doc_id, changes=changes) as record:
            if not changes:
                raise RejectedError("nothing to change: give --title, --author, --date, ...")
            with lock_for(self.settings):
                path, _ = self._find(doc_id)
                original = path.read_text(encoding="utf-8")
                front, body = split_front_matter(original, path.name)
                front.update(changes)
                front.setdefault("id", doc_id)
                text = Converted(front, body).to_markdown()
                try:
                    parse_document(text, doc_id=doc_id, path=path.name)  # still valid?
                except DocumentError as exc:
                    raise RejectedError(str(exc)) from exc
                report = self._apply(
                    lambda: _write_atomically(path, text),
                    lambda: _write_atomically(path, original),
                )
                doc = read_document(path)
            record["content_hash"] = doc.content_hash
        return Change("edit", doc_id, doc.meta.title, self._passages(doc_id), report)

    def remove(self, doc_id: str, who: str = "cli") -> Change:
        """Take an essay out of the library (a copy is kept under INDEX_DIR/removed/).

        Raises:
            RejectedError: Unknown essay.
        """
        with self._audited(who, "remove", doc_id) as record, lock_for(self.settings):
            path, doc = self._find(doc_id)
            keep = self.settings.index_dir / "removed"
            keep.mkdir(parents=True, exist_ok=True)
            backup = keep / f"{time.strftime('%Y%m%dT%H%M%S')}-{path.name}"
            shutil.copy2(path, backup)
            report = self._apply(path.unlink, lambda: shutil.copy2(backup, path))
            record.update(content_hash=doc.content_hash, backup=str(backup))
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
        with self._audited(who, "reindex", "library") as record:
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
