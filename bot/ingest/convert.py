"""Uploaded files in the formats people have, turned into library Markdown.

`.md` and `.txt` keep their text as written; `.html` goes through trafilatura (main text,
metadata and reader comments, page chrome dropped); `.pdf` through pypdf. The result is
what the library stores, so quotes are verbatim against it.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from bot.ingest.decoding import decode_text
from bot.ingest.documents import split_front_matter
from bot.ingest.metadata import is_web_address
from bot.ingest.model import DocumentError

SUFFIXES = (".md", ".markdown", ".txt", ".html", ".htm", ".pdf")


@dataclass
class Converted:
    """An upload as library text: front-matter metadata and the body."""

    meta: dict[str, Any] = field(default_factory=dict)
    body: str = ""

    def to_markdown(self) -> str:
        """The library file's text."""
        meta = {k: v for k, v in self.meta.items() if v not in (None, "")}
        if not meta:
            return self.body
        head = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)
        return f"---\n{head}---\n{self.body}"


def _web(url: Any) -> str | None:
    """A page's own address, kept only when it is a web address (a page may declare
    ``javascript:`` or a relative path as its canonical URL)."""
    return url if isinstance(url, str) and is_web_address(url) else None


def _html(data: bytes, name: str) -> Converted:
    import trafilatura

    html = decode_text(data, name)
    doc = trafilatura.bare_extraction(
        html, include_comments=True, with_metadata=True, favor_precision=True
    )
    if doc is None:
        raise DocumentError(f"{name}: no article text found in the page")
    found = doc.as_dict() if hasattr(doc, "as_dict") else dict(doc)
    text = (found.get("text") or "").strip()
    if not text:
        raise DocumentError(f"{name}: no article text found in the page")
    meta: dict[str, Any] = {
        "title": found.get("title"),
        "author": found.get("author"),
        "date": found.get("date"),
        "source": found.get("sitename") or found.get("hostname"),
        "url": _web(found.get("url")),
    }
    body = text
    comments = [
        ln.strip()
        for ln in (found.get("comments") or "").splitlines()
        if ln.strip() and not re.fullmatch(r"(?:\d+\s+)?(?:Comments?|Responses?)", ln.strip())
    ]
    if comments:
        meta["comments_start"] = comments[0][:80]
        body += "\n\n" + "\n\n".join(comments)
    return Converted(meta, body + "\n")


def _pdf(data: bytes, name: str) -> Converted:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, PdfReadError, PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        encrypted = reader.is_encrypted
        pages = [] if encrypted else [(p.extract_text() or "").strip() for p in reader.pages]
        info: Any = {} if encrypted else (reader.metadata or {})
    except (PdfReadError, PyPdfError, DependencyError, ValueError, KeyError, OSError) as exc:
        raise DocumentError(f"{name}: not a readable PDF ({exc.__class__.__name__})") from exc
    if encrypted:
        raise DocumentError(f"{name}: the PDF is encrypted; send a copy without a password")
    body = "\n\n".join(p for p in pages if p)
    if not body.strip():
        raise DocumentError(f"{name}: the PDF has no extractable text (a scan?)")
    meta = {"title": info.get("/Title"), "author": info.get("/Author")}
    return Converted({k: str(v) for k, v in meta.items() if v}, body + "\n")


def convert_upload(name: str, data: bytes) -> Converted:
    """Turn an uploaded file into library text.

    Raises:
        DocumentError: Unknown extension, or the file is not what its extension says.
    """
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if suffix not in SUFFIXES:
        allowed = ", ".join(SUFFIXES)
        raise DocumentError(f"{name}: unsupported file type {suffix or '(none)'}; use {allowed}")
    if suffix in (".html", ".htm"):
        return _html(data, name)
    if suffix == ".pdf":
        if not data.startswith(b"%PDF"):
            raise DocumentError(f"{name}: not a PDF file")
        return _pdf(data, name)
    text = decode_text(data, name)
    meta, body = split_front_matter(text, name)
    return Converted(meta, body)
