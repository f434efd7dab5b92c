"""Essays in: read a library file, keep its prose verbatim, drop page leftovers.

A library file is plain text, optionally with YAML front matter (Markdown style)::

    ---
    title: Why Putin Cannot Afford A Peace Deal Now
    author: Mick Ryan
    date: 2026-02-03
    source: Futura Doctrina
    via: A Blog by Jonathan Low
    parts:                      # who wrote which stretch, from a paragraph's first words
      - from: "Putin, all of his oligarchs"
        author: Jonathan Low
        note: blog introduction
    quotes:                     # a paragraph that quotes someone else
      - from: "We are encouraged by this meeting"
        speaker: Steve Witkoff
        note: social media post
    leftovers:                  # site-specific lines to drop, besides the built-in ones
      - "Mick Ryan reports in Futura Doctrina:"
    ---
    (the text as published)

The body is stored exactly as read (after decoding and Unicode NFC); cleaning never edits
it, it only decides which spans of it are prose (:class:`Paragraph`) and who wrote each one.
Reader comments (WordPress "Like" markers, Blogger "N comments:") become paragraphs with
role ``comment``; they are never attributed to the essay's author.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bot.ingest.cleaning import CLEANING_VERSION, Line, lines_of, mark_leftovers
from bot.ingest.decoding import MAX_FILE_BYTES, decode_text, read_limited
from bot.ingest.metadata import MetadataError, as_str, check_meta, load_yaml
from bot.ingest.model import META_KEYS, Document, DocumentError, EssayMeta, Role, content_hash
from bot.ingest.paragraphs import group_paragraphs, line_authors, quoted_lines

#: The files of a library folder that are essays.
TEXT_SUFFIXES = (".md", ".markdown", ".txt")


def slugify(text: str, limit: int = 60) -> str:
    """A lowercase ASCII id made from some text."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:limit].rstrip("-") or "essay"


_BOUNDARY = re.compile(r"^-{3,}\s*$", re.M)


def split_front_matter(text: str, name: str = "file") -> tuple[dict[str, Any], str]:
    """Separate YAML front matter (if any) from the body, as python-frontmatter does, but
    reading the YAML safely (see :mod:`bot.ingest.metadata`).

    Raises:
        DocumentError: The front matter cannot be read.
    """
    if not _BOUNDARY.match(text):
        return {}, text
    stripped = text.strip()
    try:
        _, head, content = _BOUNDARY.split(stripped, 2)
    except ValueError:
        return {}, stripped
    try:
        return load_yaml(head), content.strip()
    except MetadataError as exc:
        raise DocumentError(f"{name}: {exc}") from None


def _default_title(meta: dict[str, Any], lines: list[Line], name: str) -> None:
    """A file without a title is titled by its first line."""
    if meta.get("title"):
        return
    first = next((ln for ln in lines if ln.kind != "blank"), None)
    if first is None:
        raise DocumentError(f"{name} has no text")
    meta["title"] = first.text if len(first.text) <= 200 else first.text[:197] + "..."


def parse_document(text: str, doc_id: str, path: str = "", **overrides: Any) -> Document:
    """Turn a library file's text into a :class:`Document`.

    Args:
        text: The decoded file, front matter included.
        doc_id: The id to use when the front matter gives none.
        path: Where the file lives, for messages.
        **overrides: Metadata that wins over the front matter (title, author, ...).

    Returns:
        The document.

    Raises:
        DocumentError: The file has no prose, or its front matter does not fit its text.
    """
    name = Path(path).name if path else doc_id
    meta, body = split_front_matter(text, name)
    meta.update({k: v for k, v in overrides.items() if v not in (None, "")})
    try:
        meta = check_meta(meta)
    except MetadataError as exc:
        raise DocumentError(f"{name}: {exc}") from None
    lines = lines_of(body)
    _default_title(meta, lines, name)
    author = as_str(meta.get("author"))
    comment_at = mark_leftovers(lines, meta, author, name)
    voices = line_authors(lines, meta, author, name)
    quoted = quoted_lines(lines, meta, name)
    paragraphs = group_paragraphs(lines, body, comment_at, voices, quoted, author)
    if not any(p.role == Role.ESSAY for p in paragraphs):
        raise DocumentError(f"{name} has no prose left after removing page leftovers")
    digest = content_hash(CLEANING_VERSION + "\x00" + text + repr(sorted(overrides.items())))
    essay = EssayMeta(
        doc_id=slugify(str(meta.get("id") or doc_id)),
        title=str(meta["title"]).strip(),
        author=author,
        date=as_str(meta.get("date")),
        source=as_str(meta.get("source")),
        url=as_str(meta.get("url")),
        via=as_str(meta.get("via")),
    )
    return Document(
        meta=essay,
        text=body,
        paragraphs=tuple(paragraphs),
        content_hash=digest,
        path=path,
        extra={k: v for k, v in meta.items() if k not in META_KEYS},
    )


def read_document(path: Path, as_path: Path | None = None) -> Document:
    """Read one library file (``.md`` or ``.txt``) from disk.

    Args:
        path: The file.
        as_path: Where it belongs in the library, when it is read from elsewhere (an
            upload staged while it is indexed); its name gives the id and the messages.

    Raises:
        DocumentError: The file cannot be read as an essay.
    """
    home = as_path or path
    return document_from_bytes(read_limited(path, MAX_FILE_BYTES, within=path.parent), home)


def document_from_bytes(data: bytes, home: Path) -> Document:
    """A library file's bytes as the essay the index reads from `home` (its name gives
    the id and the messages).

    Raises:
        DocumentError: The bytes cannot be read as an essay.
    """
    if not data.strip():
        raise DocumentError(f"{home.name} is empty")
    return parse_document(decode_text(data, home.name), doc_id=home.stem, path=str(home))


def library_files(folder: Path) -> list[Path]:
    """The essay files of a library folder, sorted by name (hidden files skipped)."""
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES and not p.name.startswith((".", "_"))
    )


def load_library(folder: Path) -> Iterator[Document | DocumentError]:
    """Every document of a library folder, or the error that stopped it, in file order."""
    for path in library_files(folder):
        try:
            yield read_document(path)
        except DocumentError as exc:
            yield exc
