"""Ingestion: leftovers go, prose stays verbatim, comments are separated."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.ingest.chunking import make_passages, split_sentences
from bot.ingest.decoding import decode_text
from bot.ingest.documents import parse_document, read_document
from bot.ingest.model import DocumentError, Role
from tests.conftest import RAW_SEEDS as RAW


def _kept(doc) -> list[str]:  # type: ignore[no-untyped-def]
    return [doc.text[p.start : p.end] for p in doc.paragraphs]


@pytest.mark.parametrize("name", sorted(p.name for p in RAW.glob("*.txt")))
def test_raw_text_without_metadata_ingests(name: str) -> None:
    raw = (RAW / name).read_text(encoding="utf-8")
    doc = parse_document(raw, doc_id=Path(name).stem)
    assert doc.meta.author is None and doc.meta.title  # title from the first line
    assert doc.text == raw  # stored as published
    for para in _kept(doc):
        assert para in raw
        for leftover in ("LikeLike", "Liked by 2 people", "Post a Comment", "0 comments:"):
            assert leftover not in para
        assert not para.startswith("Image:")


def test_comments_found_without_metadata() -> None:
    raw = (RAW / "000_4f3bc5a24f05ce64.txt").read_text(encoding="utf-8")
    doc = parse_document(raw, doc_id="analyst")
    comments = [doc.text[p.start : p.end] for p in doc.paragraphs if p.role == Role.COMMENT]
    assert len(comments) == 3
    assert comments[0].startswith("I like the Lend Lease idea.")
    assert comments[0].endswith("when the bill comes.")
    assert comments[2].startswith("Excellent analysis.")
    kept = " ".join(_kept(doc))
    assert "mistaryanalyst.bsky.social" not in kept  # signature dropped
    assert "The Analyst\n" not in kept


def test_blogger_leftovers_and_date_line() -> None:
    raw = (RAW / "002_d7362e34a01fd6b2.txt").read_text(encoding="utf-8")
    doc = parse_document(raw, doc_id="ryan", title="Why Putin Cannot Afford A Peace Deal Now")
    kept = _kept(doc)
    assert not any(k in ("Feb 3, 2026", "Image: Russia Matters") for k in kept)
    assert not any(k.startswith("Why Putin Cannot Afford") for k in kept)  # title line
    assert all(p.role != Role.COMMENT for p in doc.paragraphs)  # "0 comments:" has none


def test_sentences_keep_abbreviations_dates_and_lists() -> None:
    text = (
        "---\ntitle: T\nauthor: A\n---\n"
        "U.S. Special Envoy Steve Witkoff met Kirill Dmitriev on Feb 3, 2026 in Miami. "
        "It went well.\n"
        "1.Russia never ever sticks to a treaty obligation unless it suits it.\n"
        "  • Ukraine’s military has not been destroyed; indeed it is bigger.\n"
        "- Russia completely defeats Ukraine\n"
    )
    doc = parse_document(text, doc_id="t")
    got = [doc.text[s.start : s.end] for s in split_sentences(doc)]
    assert got == [
        "U.S. Special Envoy Steve Witkoff met Kirill Dmitriev on Feb 3, 2026 in Miami.",
        "It went well.",
        "Russia never ever sticks to a treaty obligation unless it suits it.",
        "Ukraine’s military has not been destroyed; indeed it is bigger.",
        "Russia completely defeats Ukraine",
    ]


def test_long_sentence_is_split_at_word_boundaries() -> None:
    words = " ".join(f"word{i}" for i in range(400))
    doc = parse_document(f"Title line\n{words}.\n", doc_id="long")
    sentences = split_sentences(doc)
    assert len(sentences) >= 5
    for s in sentences:
        piece = doc.text[s.start : s.end]
        assert len(piece.split()) <= 90 and piece in words + "."
    for p in make_passages(doc, sentences):
        assert len(p.embed_text(doc.text, sentences).split()) <= 180


def test_front_matter_phrase_not_found_is_a_clear_error() -> None:
    text = (
        "---\ntitle: T\nparts:\n  - from: nowhere to be found\n    author: X\n---\n"
        "Some text here.\n"
    )
    with pytest.raises(DocumentError, match="no paragraph starts with"):
        parse_document(text, doc_id="t")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"   \n\t\n", "empty"),
        (b"\x00\x01\x02binary\xff\xfe\x00" * 50, "binary"),
    ],
)
def test_bad_files(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(data)
    with pytest.raises(DocumentError, match=message):
        read_document(path)


def test_encodings_are_detected_and_normalised() -> None:
    text = "Café “quoted” — naïve résumé of the war’s cost, written plainly. " * 5
    assert decode_text(text.encode("utf-16")) == text
    assert decode_text(text.encode("cp1252")) == text
    assert decode_text(("\ufeff" + text).encode("utf-8")) == text
    decomposed = "Cafe\u0301"
    assert decode_text(decomposed.encode("utf-8")) == "Café"
    assert decode_text(b"line one\r\nline two\r") == "line one\nline two\n"


@pytest.mark.parametrize(("date", "kept"), [("180", "180"), ("62", "62"), ("1780-03", "1780-03")])
def test_ancient_years_and_months_are_dates(date: str, kept: str) -> None:
    text = f"---\ntitle: Meditations, Book One\nauthor: Marcus Aurelius\ndate: {date}\n---\n"
    doc = parse_document(text + "Of my grandfather Verus I have learned to be gentle.\n", "m")
    assert doc.meta.date == kept


@pytest.mark.parametrize("date", ["yesterday", "18o", "12345", "1780-3"])
def test_dates_that_are_not_a_year_are_refused(date: str) -> None:
    text = f"---\ntitle: T\ndate: {date}\n---\nA sentence of prose that is long enough.\n"
    with pytest.raises(DocumentError, match="'date' must be a year"):
        parse_document(text, "t")
