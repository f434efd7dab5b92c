"""Paragraphs: kept lines grouped into numbered paragraphs, each with its voice (the
essay's author, someone it quotes, a part by another hand, or a reader comment).

A hard-wrapped file (Project Gutenberg, e-mail) ends a paragraph only at a blank line, as
in Markdown; otherwise a line after one that ends a sentence starts a new one.
"""

from __future__ import annotations

from typing import Any

from bot.ingest.cleaning import BULLET, TERMINAL, Line, find_paragraph
from bot.ingest.metadata import as_str
from bot.ingest.model import DocumentError, Paragraph, Role

Voice = tuple[str | None, str | None]  # (who, note)


def line_authors(
    lines: list[Line], meta: dict[str, Any], author: str | None, name: str
) -> list[Voice]:
    """Who wrote each line: ``parts`` switch the author from a paragraph on."""
    starts: dict[int, Voice] = {}
    cursor = 0
    for part in meta.get("parts") or []:
        if not isinstance(part, dict) or "from" not in part:
            raise DocumentError(f"{name}: each entry of 'parts' needs a 'from' phrase")
        idx = find_paragraph(lines, part["from"], cursor, name)
        starts[idx] = (as_str(part.get("author")), as_str(part.get("note")))
        cursor = idx + 1
    current: Voice = (author, None)
    voices = []
    for i in range(len(lines)):
        current = starts.get(i, current)
        voices.append(current)
    return voices


def quoted_lines(lines: list[Line], meta: dict[str, Any], name: str) -> dict[int, Voice]:
    """Paragraphs that quote someone (``quotes``), by line index: (speaker, note)."""
    quoted: dict[int, Voice] = {}
    for q in meta.get("quotes") or []:
        if not isinstance(q, dict) or "from" not in q:
            raise DocumentError(f"{name}: each entry of 'quotes' needs a 'from' phrase")
        idx = find_paragraph(lines, q["from"], 0, name)
        quoted[idx] = (as_str(q.get("speaker")), as_str(q.get("note")))
    return quoted


_Key = tuple[Role, str | None, str | None, str | None]  # (role, who, note, quoted_by)
#: Lines of hard-wrapped prose: a fixed width, well under a typical paragraph's length.
WRAP_WIDTH = range(40, 101)


def hard_wrapped(lines: list[Line]) -> bool:
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

    def add(self, line: Line, key: _Key, in_comments: bool, likes_present: bool) -> None:
        """A kept line: continues the open paragraph (a soft wrap) or starts one."""
        soft_wrap = (
            self.open is not None
            and key == self.key
            and (
                in_comments
                or self.wrapped
                or not TERMINAL.match(self.body, self.open[1] - 1, self.open[1])
            )
            and not BULLET.match(line.text)
        )
        if soft_wrap and self.open is not None:
            self.open[1] = line.end
            return
        self.close()
        if in_comments and key == self.key and not likes_present:
            self.gap = True  # without "Like" markers, each blank-separated block is a comment
        self.key = key
        self.open = [line.start, line.end]


def group_paragraphs(
    lines: list[Line],
    body: str,
    comment_at: int | None,
    voices: list[Voice],
    quoted: dict[int, Voice],
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
