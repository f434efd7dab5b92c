"""The essays of a loaded generation: metadata in memory, each essay's text and
paragraphs read from the generation's database when a question first quotes it, and
checked against the checksums written with it.

A damaged stored copy is replaced by the library file when that still holds what was
indexed; otherwise the generation is passed over (:class:`DamagedEssay`): never a
quote of words the author did not write.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.ingest.documents import read_document
from bot.ingest.model import Document, DocumentError, EssayMeta, Paragraph, Role

log = logging.getLogger(__name__)


class DamagedEssay(ValueError):
    """An essay's text in a generation is not what was written there, and the library
    file no longer holds it either: the generation must not be read (the engine passes
    over it to an intact one)."""

    def __init__(self, generation: str, doc_id: str) -> None:
        super().__init__(f"essay {doc_id!r} is damaged in index generation {generation}")
        self.generation = generation


def digest(text: str) -> str:
    """The checksum an essay's stored text, paragraphs or metadata are checked against."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def meta_json(r: tuple[Any, ...]) -> str:
    return json.dumps(list(r), ensure_ascii=False)


def paragraphs_json(doc: Document) -> str:
    """An essay's paragraphs as they are stored (and checksummed)."""
    return json.dumps([list(p.__dict__.values()) for p in doc.paragraphs])


def paragraphs_from_json(raw: str) -> tuple[Paragraph, ...]:
    """An essay's paragraphs from their stored form."""
    return tuple(Paragraph(s, e, n, Role(role), *rest) for s, e, n, role, *rest in json.loads(raw))


@dataclass(frozen=True)
class EssayRecord:
    """What a generation records of an essay besides its text and paragraphs."""

    meta: EssayMeta
    content_hash: str
    path: str
    extra_json: str  # the front matter's other fields, parsed when the essay is read


#: Full documents a snapshot keeps loaded (the ones recent questions quoted from).
DOCS_KEPT = 512


class Library(Mapping[str, Document]):
    """The essays of a generation by id: metadata in memory, each essay's text and
    paragraphs read from the generation's database when first needed.

    A 10,000-essay library holds 300 MB of text; reading it all would cost a cold start
    seconds for the few essays a question quotes.

    Args:
        db: The generation's database, open read-only (kept open: a writer may delete
            the generation's folder while this snapshot still answers from it).
        records: What the generation records of each essay, in library order.
    """

    def __init__(
        self,
        db: sqlite3.Connection,
        records: dict[str, EssayRecord],
        checks: dict[str, list[str]],
        generation: str,
    ) -> None:
        self.db = db
        self.records = records
        self.checks = checks
        self.generation = generation
        self._kept: OrderedDict[str, Document] = OrderedDict()
        self._texts: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def __getitem__(self, doc_id: str) -> Document:
        doc = self._kept.get(doc_id)  # the common case, without the lock
        if doc is not None:
            return doc
        with self._lock:
            doc = self._kept.get(doc_id)
            if doc is not None:
                return doc
            r = self.records[doc_id]
            text, paragraphs = self._stored(doc_id, "text, paragraphs", (0, 1))
            doc = Document(
                meta=r.meta,
                text=text,
                paragraphs=paragraphs_from_json(paragraphs),
                content_hash=r.content_hash,
                path=r.path,
                extra=json.loads(r.extra_json),
            )
            self._kept[doc_id] = doc
            if len(self._kept) > DOCS_KEPT:
                self._kept.popitem(last=False)
            return doc

    def text(self, doc_id: str) -> str:
        """An essay's text alone (choosing quotes reads sentences of many essays; only
        the chosen quotes need the essay's paragraphs)."""
        doc = self._kept.get(doc_id)
        if doc is not None:
            return doc.text
        text = self._texts.get(doc_id)
        if text is None:
            with self._lock:
                (text,) = self._stored(doc_id, "text", (0,))
                self._texts[doc_id] = text
                if len(self._texts) > DOCS_KEPT:
                    self._texts.popitem(last=False)
        return text

    def _stored(self, doc_id: str, columns: str, which: tuple[int, ...]) -> tuple[str, ...]:
        """An essay's stored columns, checked against the checksums written with them
        (once per essay read, not per question). A damaged copy is replaced by the
        library file when that still holds what was indexed (the same content hash);
        else :class:`DamagedEssay`."""
        try:
            row = self.db.execute(f"SELECT {columns} FROM docs WHERE doc_id = ?", (doc_id,))
            values = tuple(row.fetchone())
            if all(digest(v) == self.checks[doc_id][i] for v, i in zip(values, which, strict=True)):
                return values
        except (sqlite3.Error, TypeError, KeyError, UnicodeError):  # unreadable: damage too
            pass
        log.warning("essay %s is damaged in index generation %s", doc_id, self.generation)
        doc = self._from_disk(doc_id)
        return tuple((doc.text, paragraphs_json(doc))[i] for i in which)

    def _from_disk(self, doc_id: str) -> Document:
        """The essay read again from its library file, if that still holds what was
        indexed (its content hash and text checksum); else :class:`DamagedEssay`."""
        r = self.records[doc_id]
        try:
            doc = read_document(Path(r.path))
        except DocumentError:
            raise DamagedEssay(self.generation, doc_id) from None
        if doc.content_hash != r.content_hash or digest(doc.text) != self.checks[doc_id][0]:
            raise DamagedEssay(self.generation, doc_id)
        return doc

    def essays(self) -> list[EssayMeta]:
        """Every essay's metadata, in library order."""
        return [r.meta for r in self.records.values()]

    def __iter__(self) -> Iterator[str]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self.records
