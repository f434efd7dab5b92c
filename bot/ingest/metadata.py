"""Front matter read safely and checked: one bad essay file is refused with a reason, never
a crash or a 4 GB expansion.

YAML is read without aliases (``*a`` repeats an anchored node, so a few hundred bytes can
expand to gigabytes), in at most :data:`MAX_FRONT_MATTER` characters; impossible values
("2026-02-30") and wrongly typed fields are refused with a one-line reason.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

import yaml

MAX_FRONT_MATTER = 64 * 1024
#: One-line fields and their longest accepted length.
LINE_FIELDS = {"id": 120, "title": 300, "author": 200, "date": 40, "source": 300, "via": 200,
               "url": 2000, "comments_start": 300}  # fmt: skip
#: A year (any era: Seneca wrote in 62, Marcus Aurelius about 180), or a month or day of
#: a four-digit year.
_DATE = re.compile(r"^(?:\d{1,4}|\d{4}-\d{2}(?:-\d{2})?)$")


def is_web_address(url: str) -> bool:
    """An http or https address with a host: the only kind of essay URL accepted at
    ingest and linked when rendered (never ``javascript:``, ``data:`` or ``file:``)."""
    parts = urlsplit(url)
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


class MetadataError(ValueError):
    """Front matter that cannot be used; the message says why in one line."""


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing aliases."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise MetadataError("front matter uses YAML aliases (*name), which are not accepted")
        return super().compose_node(parent, index)


def load_yaml(head: str) -> dict[str, Any]:
    """Parse a front-matter block (anything but a mapping counts as no metadata, as
    python-frontmatter has it).

    Raises:
        MetadataError: Too long, not YAML, an alias, or an impossible value.
    """
    if len(head) > MAX_FRONT_MATTER:
        raise MetadataError(f"front matter is {len(head):,} characters; the limit is 65,536")
    try:
        data = yaml.load(head, Loader=_NoAliasLoader)  # noqa: S506 - a safe loader
    except MetadataError:
        raise
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or exc.__class__.__name__
        raise MetadataError(f"front matter is not valid YAML ({problem})") from None
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. date 2026-02-30
        raise MetadataError(f"front matter has an impossible value ({exc})") from None
    if not isinstance(data, dict):
        return {}
    return {str(k): v for k, v in data.items()}


def _one_line(key: str, value: Any) -> str | None:
    """A one-line field as text: numbers and dates written out, a list of names joined."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        value = value.date().isoformat()
    elif isinstance(value, date):
        value = value.isoformat()
    elif key == "author" and isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = " and ".join(v.strip() for v in value if v.strip())
    elif isinstance(value, bool) or not isinstance(value, str | int | float):
        raise MetadataError(f"'{key}' must be text, not {type(value).__name__}")
    text = str(value).strip()
    if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in text):
        raise MetadataError(f"'{key}' must be one line of text")
    if len(text) > LINE_FIELDS[key]:
        raise MetadataError(f"'{key}' is {len(text):,} characters; the limit is {LINE_FIELDS[key]}")
    if key == "url" and text and not is_web_address(text):
        raise MetadataError(f"'url' must be an http or https address, not {text[:60]!r}")
    if key == "date" and not _DATE.match(text):
        raise MetadataError(f"'date' must be a year or a date like 2026-02-03, not {text[:40]!r}")
    return text or None


def _entries(meta: dict[str, Any], key: str, kind: type) -> None:
    value = meta.get(key)
    if value is None:
        return
    if not isinstance(value, list) or not all(isinstance(v, kind) for v in value):
        what = "texts" if kind is str else "entries with a 'from' phrase"
        raise MetadataError(f"'{key}' must be a list of {what}")
    if kind is dict and not all(isinstance(v.get("from"), str) for v in value):
        raise MetadataError(f"each entry of '{key}' needs a 'from' phrase")


def check_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """The metadata with its one-line fields as clean text, or a reason to refuse it.

    Raises:
        MetadataError: A field has the wrong type, several lines, an impossible length, or
            a date that is not one.
    """
    out = dict(meta)
    for key in LINE_FIELDS:
        if key in out:
            out[key] = _one_line(key, out[key])
    _entries(out, "parts", dict)
    _entries(out, "quotes", dict)
    _entries(out, "leftovers", str)
    return out


def as_str(value: Any) -> str | None:
    """A front-matter value as the text an essay's metadata holds: a date as ISO 8601,
    anything else as its string, stripped; None for nothing."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip() or None
