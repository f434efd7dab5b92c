"""Page leftovers: which lines of a library file are not the essay's prose.

Cleaning never edits the text; it marks lines. It drops page chrome ("LikeLiked by 2
people", "0 comments:", "Post a Comment", "Image: ...", a date or the title alone) and a
closing signature, and finds where reader comments start (WordPress "Like" markers,
Blogger "N comments:").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from bot.ingest.model import DocumentError

#: Bumped whenever cleaning or chunking changes what gets indexed.
CLEANING_VERSION = "2"

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
#: A line that ends a sentence (or a quotation, a bracket).
TERMINAL = re.compile(r"[.!?:;…\"”’)\]]$")
#: A line that opens a list item.
BULLET = re.compile(r"^(?:[•·▪◦‣∙*–—-]|\d{1,2}[.)](?=\s|[A-Z]))")
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
    return len(words) <= 3 and not TERMINAL.search(line) and not BULLET.match(line)


# --- lines ------------------------------------------------------------------------------

#: What a line of a library file is: prose, a blank line, page leftovers to drop, or a
#: "Like" marker of a blog's comments.
LineKind = Literal["content", "blank", "drop", "like"]


@dataclass
class Line:
    """One line of a file's body: where its text is (stripped) and what it is."""

    start: int
    end: int
    text: str
    kind: LineKind = "content"


def lines_of(body: str) -> list[Line]:
    """A body's lines, each with its offsets in the body: blank, or prose until marked."""
    out: list[Line] = []
    pos = 0
    for raw in body.split("\n"):
        stripped = raw.strip()
        if stripped:
            lead = len(raw) - len(raw.lstrip())
            out.append(Line(pos + lead, pos + lead + len(stripped), stripped))
        else:
            out.append(Line(pos, pos, "", "blank"))
        pos += len(raw) + 1
    return out


def find_paragraph(lines: list[Line], phrase: str, after: int, name: str) -> int:
    needle = " ".join(str(phrase).split())
    for i in range(after, len(lines)):
        if lines[i].kind != "blank" and " ".join(lines[i].text.split()).startswith(needle):
            return i
    raise DocumentError(f"{name}: no paragraph starts with {needle[:60]!r}")


def _mark_comments(lines: list[Line], meta: dict[str, Any], name: str) -> int | None:
    """Find where reader comments start; returns a line index or None."""
    if meta.get("comments_start"):
        return find_paragraph(lines, meta["comments_start"], 0, name)
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


def mark_leftovers(
    lines: list[Line], meta: dict[str, Any], author: str | None, name: str
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


Voice = tuple[str | None, str | None]  # (who, note)
