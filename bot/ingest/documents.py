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

import hashlib
import re
import stat
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from bot.errors import UserError
from bot.ingest.metadata import MetadataError, check_meta, is_web_address, load_yaml


class Role(StrEnum):
    """Whose words a paragraph holds: the essay's (its author's, or someone it quotes:
    see :attr:`Paragraph.quoted_by`) or a reader comment's."""

    ESSAY = "essay"
    COMMENT = "comment"


#: Bumped whenever cleaning or chunking changes what gets indexed.
CLEANING_VERSION = "2"
TEXT_SUFFIXES = (".md", ".markdown", ".txt")
META_KEYS = ("title", "author", "date", "source", "url", "via")


class DocumentError(UserError):
    """A library file cannot be read as an essay; the message says why in one line."""


@dataclass(frozen=True)
class Paragraph:
    """A kept stretch of prose, as offsets into :attr:`Document.text`.

    Attributes:
        start: Offset of the first character.
        end: Offset one past the last character.
        number: 1-based position among the essay's kept paragraphs ("¶ 12"), or among
            the comments for a comment.
        role: ``essay`` or ``comment``.
        author: Who wrote these words; ``None`` when unknown (e.g. an anonymous comment).
        note: What this stretch is, when it is not the essay proper ("blog introduction").
        quoted_by: When the words are someone else's quoted in the essay, who quotes them.
        block: Paragraphs that share a block are adjacent, with the same attribution.
    """

    start: int
    end: int
    number: int
    role: Role
    author: str | None
    note: str | None = None
    quoted_by: str | None = None
    block: int = 0


@dataclass(frozen=True)
class EssayMeta:
    """Which essay, who wrote it, where and when it was published: everything a quote is
    attributed by. Declared once; a document, the index's record of an essay, a listing
    line and an excerpt each embed it.

    Attributes:
        doc_id: The essay's id (its file stem unless the front matter names one).
        title: Its title.
        author: Who wrote it, when known.
        date: When it was published, as the front matter gives it.
        source: Where it was published.
        url: Where it can be read.
        via: Where it was found, when that is not where it was published.
    """

    doc_id: str
    title: str
    author: str | None = None
    date: str | None = None
    source: str | None = None
    url: str | None = None
    via: str | None = None

    @property
    def link(self) -> str | None:
        """The URL to link to: only a web address (an index written before URLs were
        checked at ingest may hold another kind)."""
        return self.url if self.url and is_web_address(self.url) else None


@dataclass(frozen=True)
class Document:
    """One essay: its metadata, the text as published, and its prose paragraphs."""

    meta: EssayMeta
    text: str
    paragraphs: tuple[Paragraph, ...]
    content_hash: str
    path: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


# --- decoding ---------------------------------------------------------------------------


def decode_text(data: bytes, name: str = "file") -> str:
    """Decode bytes to text: UTF-8 (with or without BOM), UTF-16 with BOM, else detected.

    Args:
        data: The raw bytes.
        name: The file's name, for messages.

    Returns:
        The text with Windows/Mac newlines turned into ``\\n`` and Unicode in NFC.

    Raises:
        DocumentError: The bytes are not text.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16")
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            if b"\x00" in data[:4096]:
                raise DocumentError(f"{name} looks like a binary file, not text") from None
            from charset_normalizer import from_bytes

            matches = list(from_bytes(data))
            if not matches:
                raise DocumentError(f"{name} is not readable text (unknown encoding)") from None
            best = matches[0]
            # Ties are common among Windows code pages; Western European is the likeliest.
            for m in matches:
                if m.encoding == "cp1252" and m.percent_chaos <= best.percent_chaos:
                    best = m
            text = str(best)
    if "\x00" in text:
        raise DocumentError(f"{name} looks like a binary file, not text")
    controls = sum(1 for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\n\r\t\f")
    if controls > max(8, len(text) // 200):
        raise DocumentError(f"{name} looks like a binary file, not text")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return unicodedata.normalize("NFC", text)


def content_hash(text: str) -> str:
    """A short, stable hash of some text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


# --- page leftovers -----------------------------------------------------------------------

_LIKE = re.compile(r"^(?:Like)?(?:Like|Liked by \d+ (?:people|person))$")
_COMMENTS_HEADER = re.compile(r"^\d+\s+comments?:?$|^(?:Leave a|Post a) (?:Comment|Reply)$", re.I)
_LEFTOVER = re.compile(
    r"^(?:Image|Photo|Picture|Credit|Photo credit|Image credit|Caption)\s*:.*$"
    r"|^(?:Share this|Related|Loading\.\.\.|Reply|Share|Subscribe|Advertisements?)\s*:?$"
    r"|^(?:Post a Comment|Leave a Comment|Leave a Reply|Newer Post|Older Post|Home)$",
    re.I,
)
_MONTHS = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)
_DATE_LINE = re.compile(
    rf"^(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,?\s+)?"
    rf"(?:{_MONTHS}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"
    rf"|\d{{1,2}}\s+{_MONTHS}\.?,?\s+\d{{4}}|\d{{4}}-\d{{2}}-\d{{2}}|\d{{1,2}}/\d{{1,2}}/\d{{2,4}})$",
    re.I,
)
_TERMINAL = re.compile(r"[.!?:;…\"”’)\]]$")
_BULLET = re.compile(r"^(?:[•·▪◦‣∙*–—-]|\d{1,2}[.)](?=\s|[A-Z]))")
_HANDLE = re.compile(r"^@?[\w.-]+\.(?:com|org|net|social|bsky\.social|io|blog|co\.uk)$|^@\w+$")


def is_like_marker(line: str) -> bool:
    """A WordPress "Like" line that closes a reader comment."""
    return bool(_LIKE.match(line))


def is_leftover(line: str, meta: dict[str, Any]) -> bool:
    """Page chrome that is not prose: markers, captions, a date or the title alone."""
    if _LEFTOVER.match(line) or _COMMENTS_HEADER.match(line) or is_like_marker(line):
        return True
    if _DATE_LINE.match(line):
        return True
    folded = line.casefold().strip(" :")
    for key in ("title", "via"):
        value = meta.get(key)
        if value and folded == str(value).casefold().strip(" :"):
            return True
    return any(folded == str(x).casefold().strip(" :") for x in meta.get("leftovers") or [])


def _looks_like_signature(line: str, author: str | None) -> bool:
    if author and line.casefold() == author.casefold():
        return True
    if _HANDLE.match(line):
        return True
    words = line.split()
    return len(words) <= 3 and not _TERMINAL.search(line) and not _BULLET.match(line)


# --- parsing ----------------------------------------------------------------------------


#: What a line of a library file is: prose, a blank line, page leftovers to drop, or a
#: "Like" marker of a blog's comments.
LineKind = Literal["content", "blank", "drop", "like"]


@dataclass
class _Line:
    start: int
    end: int
    text: str
    kind: LineKind = "content"


def _lines(body: str) -> list[_Line]:
    out: list[_Line] = []
    pos = 0
    for raw in body.split("\n"):
        stripped = raw.strip()
        if stripped:
            lead = len(raw) - len(raw.lstrip())
            out.append(_Line(pos + lead, pos + lead + len(stripped), stripped))
        else:
            out.append(_Line(pos, pos, "", "blank"))
        pos += len(raw) + 1
    return out


def _as_str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip() or None


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


def _find_paragraph(lines: list[_Line], phrase: str, after: int, name: str) -> int:
    needle = " ".join(str(phrase).split())
    for i in range(after, len(lines)):
        if lines[i].kind != "blank" and " ".join(lines[i].text.split()).startswith(needle):
            return i
    raise DocumentError(f"{name}: no paragraph starts with {needle[:60]!r}")


def _mark_comments(lines: list[_Line], meta: dict[str, Any], name: str) -> int | None:
    """Find where reader comments start; returns a line index or None."""
    if meta.get("comments_start"):
        return _find_paragraph(lines, meta["comments_start"], 0, name)
    likes = [i for i, ln in enumerate(lines) if ln.kind != "blank" and is_like_marker(ln.text)]
    header = next(
        (
            i
            for i, ln in enumerate(lines)
            if ln.kind != "blank" and re.match(r"^[1-9]\d*\s+comments?:?$", ln.text, re.I)
        ),
        None,
    )
    if header is not None:
        nxt = next((i for i in range(header + 1, len(lines)) if lines[i].kind != "blank"), None)
        return nxt
    if not likes:
        return None
    first = likes[0]
    blank = max((i for i in range(first) if lines[i].kind == "blank"), default=None)
    if blank is None:
        return None
    return next((i for i in range(blank + 1, first) if lines[i].kind != "blank"), None)


def _default_title(meta: dict[str, Any], lines: list[_Line], name: str) -> None:
    """A file without a title is titled by its first line."""
    if meta.get("title"):
        return
    first = next((ln for ln in lines if ln.kind != "blank"), None)
    if first is None:
        raise DocumentError(f"{name} has no text")
    meta["title"] = first.text if len(first.text) <= 200 else first.text[:197] + "..."


def _mark_leftovers(
    lines: list[_Line], meta: dict[str, Any], author: str | None, name: str
) -> int | None:
    """Mark page chrome and a closing signature as dropped; find where comments start.

    Returns:
        The line index where reader comments start, or None.
    """
    for ln in lines:
        if ln.kind == "content" and is_leftover(ln.text, meta):
            ln.kind = "like" if is_like_marker(ln.text) else "drop"
    comment_at = _mark_comments(lines, meta, name)
    essay_end = comment_at if comment_at is not None else len(lines)
    # A signature (name, handle) closes many essays: drop up to three short trailing lines.
    tail = [i for i in range(essay_end) if lines[i].kind == "content"][-3:]
    for i in reversed(tail):
        if not _looks_like_signature(lines[i].text, author):
            break
        lines[i].kind = "drop"
    return comment_at


_Voice = tuple[str | None, str | None]  # (who, note)


def _line_authors(
    lines: list[_Line], meta: dict[str, Any], author: str | None, name: str
) -> list[_Voice]:
    """Who wrote each line: ``parts`` switch the author from a paragraph on."""
    starts: dict[int, _Voice] = {}
    cursor = 0
    for part in meta.get("parts") or []:
        if not isinstance(part, dict) or "from" not in part:
            raise DocumentError(f"{name}: each entry of 'parts' needs a 'from' phrase")
        idx = _find_paragraph(lines, part["from"], cursor, name)
        starts[idx] = (_as_str(part.get("author")), _as_str(part.get("note")))
        cursor = idx + 1
    current: _Voice = (author, None)
    voices = []
    for i in range(len(lines)):
        current = starts.get(i, current)
        voices.append(current)
    return voices


def _quoted_lines(lines: list[_Line], meta: dict[str, Any], name: str) -> dict[int, _Voice]:
    """Paragraphs that quote someone (``quotes``), by line index: (speaker, note)."""
    quoted: dict[int, _Voice] = {}
    for q in meta.get("quotes") or []:
        if not isinstance(q, dict) or "from" not in q:
            raise DocumentError(f"{name}: each entry of 'quotes' needs a 'from' phrase")
        idx = _find_paragraph(lines, q["from"], 0, name)
        quoted[idx] = (_as_str(q.get("speaker")), _as_str(q.get("note")))
    return quoted


_Key = tuple[Role, str | None, str | None, str | None]  # (role, who, note, quoted_by)
#: Lines of hard-wrapped prose: a fixed width, well under a typical paragraph's length.
WRAP_WIDTH = range(40, 101)


def hard_wrapped(lines: list[_Line]) -> bool:
    """True when the text is hard-wrapped: most lines run on into the next one at a
    fixed width (Project Gutenberg, e-mail, an editor's hard wrap), as opposed to one
    paragraph per line. Then, as in Markdown, only a blank line ends a paragraph."""
    content = [i for i, ln in enumerate(lines) if ln.kind == "content"]
    if len(content) < 4:
        return False
    running_on = sum(
        1
        for i in content
        if i + 1 < len(lines)
        and lines[i + 1].kind == "content"
        and len(lines[i].text) in WRAP_WIDTH
    )
    return running_on >= 0.5 * len(content)


class _Paragraphs:
    """Groups kept lines into numbered paragraphs and attribution blocks.

    A paragraph ends at a blank or dropped line, a change of voice, or a line after one
    that ends a sentence (a soft-wrapped line continues its paragraph). Paragraphs with the
    same voice and no gap between them share a block.
    """

    def __init__(self, body: str, author: str | None, wrapped: bool) -> None:
        self.body = body
        self.wrapped = wrapped
        self.paragraphs: list[Paragraph] = []
        self.numbers = {Role.ESSAY: 0, Role.COMMENT: 0}
        self.block = 0
        self.prev_key: _Key | None = None
        self.gap = True  # a dropped line or a new comment since the previous paragraph
        self.key: _Key = (Role.ESSAY, author, None, None)
        self.open: list[int] | None = None  # [start, end] of the paragraph being read

    def close(self) -> None:
        """End the open paragraph, if any."""
        if self.open is None:
            return
        role, who, note, by = self.key
        self.numbers[role] += 1
        if self.gap or self.key != self.prev_key:
            self.block += 1
        start, end = self.open
        self.paragraphs.append(Paragraph(start, end, self.numbers[role], role, who, note, by,
                                         self.block))  # fmt: skip
        self.prev_key, self.gap, self.open = self.key, False, None

    def drop(self) -> None:
        """A dropped line: ends the paragraph and separates blocks."""
        self.close()
        self.gap = True

    def add(self, line: _Line, key: _Key, in_comments: bool, likes_present: bool) -> None:
        """A kept line: continues the open paragraph (a soft wrap) or starts one."""
        soft_wrap = (
            self.open is not None
            and key == self.key
            and (
                in_comments
                or self.wrapped
                or not _TERMINAL.match(self.body, self.open[1] - 1, self.open[1])
            )
            and not _BULLET.match(line.text)
        )
        if soft_wrap and self.open is not None:
            self.open[1] = line.end
            return
        self.close()
        if in_comments and key == self.key and not likes_present:
            self.gap = True  # without "Like" markers, each blank-separated block is a comment
        self.key = key
        self.open = [line.start, line.end]


def _group_paragraphs(
    lines: list[_Line],
    body: str,
    comment_at: int | None,
    voices: list[_Voice],
    quoted: dict[int, _Voice],
    author: str | None,
) -> list[Paragraph]:
    grouper = _Paragraphs(body, author, hard_wrapped(lines))
    likes_present = any(ln.kind == "like" for ln in lines)
    for i, ln in enumerate(lines):
        in_comments = comment_at is not None and i >= comment_at
        if ln.kind == "blank":
            if not (in_comments and likes_present):
                grouper.close()
        elif ln.kind in ("drop", "like"):
            grouper.drop()
        elif in_comments:
            grouper.add(ln, (Role.COMMENT, None, None, None), in_comments, likes_present)
        elif i in quoted:
            speaker, note = quoted[i]
            grouper.add(ln, (Role.ESSAY, speaker, note, voices[i][0]), in_comments, likes_present)
        else:
            who, note = voices[i]
            grouper.add(ln, (Role.ESSAY, who, note, None), in_comments, likes_present)
    grouper.close()
    return grouper.paragraphs


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
    lines = _lines(body)
    _default_title(meta, lines, name)
    author = _as_str(meta.get("author"))
    comment_at = _mark_leftovers(lines, meta, author, name)
    voices = _line_authors(lines, meta, author, name)
    quoted = _quoted_lines(lines, meta, name)
    paragraphs = _group_paragraphs(lines, body, comment_at, voices, quoted, author)
    if not any(p.role == Role.ESSAY for p in paragraphs):
        raise DocumentError(f"{name} has no prose left after removing page leftovers")
    digest = content_hash(CLEANING_VERSION + "\x00" + text + repr(sorted(overrides.items())))
    essay = EssayMeta(
        doc_id=slugify(str(meta.get("id") or doc_id)),
        title=str(meta["title"]).strip(),
        author=author,
        date=_as_str(meta.get("date")),
        source=_as_str(meta.get("source")),
        url=_as_str(meta.get("url")),
        via=_as_str(meta.get("via")),
    )
    return Document(
        meta=essay,
        text=body,
        paragraphs=tuple(paragraphs),
        content_hash=digest,
        path=path,
        extra={k: v for k, v in meta.items() if k not in META_KEYS},
    )


#: The largest library file read (a 2 MB book is about 350,000 words).
MAX_FILE_BYTES = 20 * 1024 * 1024


def read_limited(path: Path, limit: int, within: Path | None = None) -> bytes:
    """A file's bytes, refusing what is not a regular file, a link that leaves `within`,
    or more than `limit` bytes (checked before reading, and never more read).

    Raises:
        DocumentError: The file is refused or cannot be read.
    """
    name = path.name
    try:
        if path.is_symlink() and within is not None:
            if not path.resolve().is_relative_to(within.resolve()):
                raise DocumentError(f"{name} is a link to a file outside {within.name or within}")
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise DocumentError(f"{name} is not a regular file")
        if info.st_size > limit:
            raise DocumentError(
                f"{name} is {info.st_size / 1e6:.1f} MB; the limit is {limit / 1e6:.1f} MB"
            )
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise DocumentError(f"{name}: cannot read ({exc.strerror})") from exc
    if len(data) > limit:  # it grew while we looked
        raise DocumentError(f"{name} is over the limit of {limit / 1e6:.1f} MB")
    return data


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
