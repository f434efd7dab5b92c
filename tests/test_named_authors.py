"""Questions that name an essay's author: answered from that author's essays.

The truth is read from the essay files' front matter, not from the index.
"""

from __future__ import annotations

import re

import pytest

from bot.answer import retrieve
from bot.answer.engine import Engine
from bot.answer.names import without_authors
from tests.conftest import SEEDS, asked
from tests.published import assert_published


def _author_on_disk(doc_id: str) -> str:
    """The `author:` line of the essay file's front matter."""
    text = (SEEDS / f"{doc_id}.md").read_text(encoding="utf-8")
    found = re.search(r"^author: (.+)$", text, re.MULTILINE)
    assert found, doc_id
    return found.group(1).strip()


def test_the_authors_names_are_taken_out_of_what_the_question_asks() -> None:
    authors = {"Franklin D. Roosevelt", "Timothy O'Brien"}
    assert without_authors("What did FDR say about fear?", authors) == "What did say about fear?"
    assert (
        without_authors("What did Timothy O'Brien's essay say of talks?", authors)
        == "What did essay say of talks?"
    )
    assert without_authors("What about Roosevelt Island?", set()) == "What about Roosevelt Island?"


@pytest.mark.parametrize(
    ("question", "author"),
    [
        # Essays do not name their own author: before the name was set aside, this
        # question's best passage fell under the decline threshold.
        ("What did O'Brien write about the negotiations?", "Timothy O'Brien"),
        ("What did Mick Ryan write about the negotiations?", "Mick Ryan"),
        ("What did the Analyst write about the negotiations?", "The Analyst"),
    ],
)
def test_a_question_naming_an_author_is_answered_from_that_authors_essay(
    engine: Engine, question: str, author: str
) -> None:
    ans = engine.ask(question)
    assert not ans.abstained, ans.best_similarity
    # The named author's essay is answered from; how far its boost lifts it is learned
    # (train/fit_answering.py), so another author's closer passage may come first.
    assert author in {_author_on_disk(ex.doc_id) for ex in ans.excerpts}
    for ex in ans.excerpts:
        assert_published(ex.quote, ex.doc_id, SEEDS)


def test_a_named_authors_passages_are_candidates_when_the_library_rankings_are_full(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With one passage from each library-wide ranking, the named author's own nearest
    passages still compete (a library of thousands of essays by others)."""
    monkeypatch.setattr(retrieve, "CANDIDATES", 1)
    snap = engine.snapshot()
    question = "What does Timothy O'Brien say about the negotiations?"
    qvec = engine.embedder.embed_query(question)
    plain = "What does he say about the negotiations?"
    unnamed = retrieve.retrieve(snap, asked(snap, plain, qvec))
    assert len(unnamed.rows) <= 2
    found = retrieve.retrieve(snap, asked(snap, question, qvec)).ranked()
    authors = [_author_on_disk(snap.passages[c.row].doc_id) for c in found]
    assert authors.count("Timothy O'Brien") >= retrieve.AUTHOR_CANDIDATES
    assert authors[0] == "Timothy O'Brien"


def test_an_author_past_the_scan_limit_is_left_to_the_boost(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An author with more passages than the limit is not scanned on every question."""
    monkeypatch.setattr(retrieve, "CANDIDATES", 1)
    monkeypatch.setattr(retrieve, "AUTHOR_SCAN_LIMIT", 1)
    snap = engine.snapshot()
    question = "What does Timothy O'Brien say about the negotiations?"
    found = retrieve.retrieve(snap, engine.read_question(snap, question))
    assert len(found.rows) <= 2


def test_a_question_and_its_variant_embed_in_one_pass_as_each_alone(engine: Engine) -> None:
    texts = ["What did O'Brien write about the negotiations?", "What did write about talks?"]
    together = engine.embedder.read(texts)
    for text, (vector, _) in zip(texts, together, strict=True):
        assert float(vector @ engine.embedder.embed_query(text)) > 0.9999
