"""Who said it: every sentence of the seeds is found from its exact words, from its words
with two changed, and with words dropped; a line the library does not hold is not."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.answer.engine import Engine
from bot.answer.inputs import InputError
from bot.answer.whosaid import WhoSaid, allowed_differences, words
from bot.index.embed import Embedder
from bot.settings import ROOT, Settings
from tests.published import assert_published, flat, published_body

SEEDS = ROOT / "seeds"


def _sentences(engine: Engine) -> list[tuple[str, str, int, int]]:
    """(doc id, text, start, end) of every sentence of three words or more."""
    snap = engine.snapshot()
    out = []
    for row in range(len(snap.sent_doc)):
        text = snap.sentence_text(row)
        if len(words(text)) >= 3:
            start, end = (int(x) for x in snap.sent_span[row])
            out.append((snap.sent_doc[row], text, start, end))
    return out


def _placed(result: WhoSaid, text: str, doc_id: str, start: int, end: int) -> bool:
    """A match stands where the sentence is, or is the same words elsewhere (a repost)."""
    for m in result.matches:
        e = m.excerpt
        assert_published(e.quote, e.doc_id, SEEDS)
        here = e.doc_id == doc_id and e.start < end and start < e.end
        if here or words(e.quote) == words(text):
            return True
    return False


@pytest.fixture(scope="module")
def seeds(seed_index: Path, embedder: Embedder) -> Engine:
    """One engine on the seed index for the module (read-only; hypothesis reuses it)."""
    return Engine(Settings(seeds_dir=SEEDS, index_dir=seed_index), embedder)


@pytest.fixture(scope="module")
def sentences(seeds: Engine) -> list[tuple[str, str, int, int]]:
    return _sentences(seeds)


def test_every_sentence_is_found_from_its_exact_words(
    seeds: Engine, sentences: list[tuple[str, str, int, int]]
) -> None:
    assert len(sentences) > 100
    for doc_id, text, start, end in sentences:
        result = seeds.who_said(text.upper())  # case and punctuation are ignored
        assert result.found, text
        best = result.matches[0]
        assert best.exact and best.closeness() == "exact", (text, best)
        assert words(best.excerpt.quote) == words(text)
        assert _placed(result, text, doc_id, start, end)


def test_every_sentence_is_found_with_two_words_changed(
    seeds: Engine, sentences: list[tuple[str, str, int, int]]
) -> None:
    rng = random.Random(7)
    long_enough = [s for s in sentences if len(words(s[1])) >= 8]
    assert len(long_enough) > 100
    for doc_id, text, start, end in long_enough:
        said = words(text)
        for i in rng.sample(range(len(said)), 2):
            said[i] = "zorblax"  # a word no essay uses
        result = seeds.who_said(" ".join(said))
        assert _placed(result, text, doc_id, start, end), (text, said)
        assert result.matches[0].words_differ >= 2
        assert re.fullmatch(r"close: \d+ words differ", result.matches[0].closeness())


def test_every_sentence_is_found_with_words_dropped(
    seeds: Engine, sentences: list[tuple[str, str, int, int]]
) -> None:
    rng = random.Random(11)
    for doc_id, text, start, end in sentences:
        said = words(text)
        if len(said) < 8:
            continue
        drop = min(2, allowed_differences(len(said)))
        for i in sorted(rng.sample(range(len(said)), drop), reverse=True):
            del said[i]
        result = seeds.who_said(" ".join(said))
        assert _placed(result, text, doc_id, start, end), (text, said)


@pytest.fixture(scope="module")
def vocabulary(sentences: list[tuple[str, str, int, int]]) -> list[str]:
    return sorted({w for _, text, _, _ in sentences for w in words(text)})


@given(data=st.data())
def test_a_line_not_in_the_library_is_not_found(
    seeds: Engine, vocabulary: list[str], sentences: list[tuple[str, str, int, int]],
    data: st.DataObject,
) -> None:  # fmt: skip
    line = data.draw(st.lists(st.sampled_from(vocabulary), min_size=8, max_size=16))
    library = " ".join(flat(" ".join(words(t))) for _, t, _, _ in sentences)
    if " ".join(line) in library:
        return  # drew real words in their real order: that line is in the library
    assert not seeds.who_said(" ".join(line)).found, line


def test_bad_lines_are_refused_in_one_line(seeds: Engine) -> None:
    for bad, says in (("", "empty"), ("two words", "at least 3 words"), ("!!! ???", "no words"),
                      ("x" * 5000, "limit")):  # fmt: skip
        with pytest.raises(InputError, match=says):
            seeds.who_said(bad)


def test_json_shape(seeds: Engine) -> None:
    text = _sentences(seeds)[5][1]
    data = seeds.who_said(text).as_dict()
    assert set(data) == {"query", "found", "matches"} and data["found"] is True
    m = data["matches"][0]
    expected = {"quote", "doc_id", "title", "author", "role", "date", "source", "start", "end",
                "similarity", "exact"}  # fmt: skip
    assert expected <= set(m)
    assert m["quote"] == published_body(SEEDS, m["doc_id"])[m["start"] : m["end"]]
    assert isinstance(m["similarity"], float) and m["exact"] is True
