"""Bytes in: a library file read within limits, and decoded to text.

Only what is text comes through: a binary file, a link out of the library folder, a
file over the size limit or one that grows while it is read is refused in one line.
"""

from __future__ import annotations

import stat
import unicodedata
from pathlib import Path

from bot.ingest.model import DocumentError

#: The largest library file read (a 2 MB book is about 350,000 words).
MAX_FILE_BYTES = 20 * 1024 * 1024


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
