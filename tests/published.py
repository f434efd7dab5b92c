"""The independent truth for verbatim checks: essay files as they are on disk.

Nothing here goes through the index or the parser: a quote is verbatim when, whitespace
aside, it stands in the file of the essay it is attributed to.
"""

from __future__ import annotations

import re
from pathlib import Path


def flat(text: str) -> str:
    """Whitespace folded to single spaces (a quote is shown with its newlines folded)."""
    return " ".join(text.split())


def published_file(folder: Path, doc_id: str) -> str:
    """The raw text of the library file whose name or front-matter id is `doc_id`."""
    for path in sorted(folder.iterdir()):
        if not path.is_file():
            continue
        raw = path.read_text(encoding="utf-8")
        if path.stem == doc_id or re.search(rf"^id: ['\"]?{re.escape(doc_id)}['\"]?$", raw, re.M):
            return raw
    raise AssertionError(f"no file for essay {doc_id!r} in {folder}")


def assert_published(quote: str, doc_id: str, folder: Path) -> None:
    """The quote stands, word for word, in the essay's file on disk."""
    assert flat(quote), "empty quote"
    assert flat(quote) in flat(published_file(folder, doc_id)), (doc_id, quote)


def published_anywhere(quote: str, folder: Path) -> bool:
    """The quote stands, word for word, in one of the essay files of a library folder
    (for a quote shown without its essay's id, as a Discord embed shows it)."""
    text = flat(quote)
    return bool(text) and any(
        text in flat(p.read_text(encoding="utf-8")) for p in sorted(folder.iterdir()) if p.is_file()
    )


def shared_run(a: str, b: str, n: int = 8) -> str | None:
    """A run of `n` consecutive words two quotes both hold (case and punctuation aside),
    or None: two excerpts that share one repeat each other."""

    def runs(text: str) -> set[tuple[str, ...]]:
        words = re.findall(r"\w+", text.casefold())
        return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}

    common = runs(a) & runs(b)
    return " ".join(min(common)) if common else None


def published_body(folder: Path, doc_id: str) -> str:
    """An essay file's text after its front matter: what quote offsets count in."""
    raw = published_file(folder, doc_id)
    if raw.startswith("---\n"):
        return raw[raw.index("\n---\n", 3) + len("\n---\n") :]
    return raw
