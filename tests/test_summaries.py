"""Summaries and perspectives: verbatim, attributed, central, never repeated."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.answer.engine import Engine
from bot.answer.inputs import InputError
from bot.answer.summarize import Summary
from bot.frontends.cli import main
from tests.conftest import SEEDS
from tests.published import assert_published, shared_run

RYAN = "ryan-putin-cannot-afford-a-peace-deal"
OBRIEN = "obrien-putin-overestimates-the-price-of-ukraine"
ANALYST = "analyst-diplomatic-end-to-the-war"
#: Who wrote each seed, as its front matter says.
AUTHORS = {RYAN: "Mick Ryan", OBRIEN: "Timothy O'Brien", ANALYST: "The Analyst"}
KEY_CLAIMS = {
    RYAN: [["afford to end the war"], ["casualties", "nothing to show"]],
    OBRIEN: [["ceasefire will not end the war"]],
    ANALYST: [["diplomatic end to the war", "real peace", "cannot be a real peace"]],
}


def _check_points(engine: Engine, summary: Summary) -> None:
    for p in summary.points:
        assert_published(p.quote, p.doc_id, SEEDS)
    quotes = [p.quote for p in summary.points]
    for i, a in enumerate(quotes):
        for b in quotes[i + 1 :]:
            assert shared_run(a, b) is None, (a, b)


@pytest.mark.parametrize("doc_id", sorted(KEY_CLAIMS))
def test_essay_summary_carries_key_claims(engine: Engine, doc_id: str) -> None:
    summary = engine.summary(doc_id)
    assert summary.kind == "essay" and 4 <= len(summary.points) <= 7
    text = " ".join(" ".join(p.quote.split()) for p in summary.points)
    for alternatives in KEY_CLAIMS[doc_id]:
        assert any(a in text for a in alternatives), (alternatives, text)
    starts = [p.start for p in summary.points]
    assert starts == sorted(starts)  # the essay's own order
    for p in summary.points:
        assert p.role == "essay" and p.author == AUTHORS[doc_id] and p.quoted_by is None
    _check_points(engine, summary)


def test_summary_length_is_configurable(engine: Engine) -> None:
    assert len(engine.summary(RYAN, points=4).points) == 4
    assert len(engine.summary(RYAN, points=7).points) == 7


def test_summary_is_served_from_the_index(engine: Engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    engine.snapshot()

    def boom(*_a, **_k):  # type: ignore[no-untyped-def]
        raise AssertionError("an essay summary must not embed anything")

    monkeypatch.setattr(engine.embedder, "embed_query", boom)
    monkeypatch.setattr(engine.embedder, "embed_texts", boom)
    assert engine.summary("Why Putin Cannot").points


def test_unknown_and_ambiguous_essays(engine: Engine) -> None:
    with pytest.raises(InputError, match="No essay matches 'banana'.*ryan-putin"):
        engine.summary("banana")
    with pytest.raises(InputError, match="matches several essays"):
        engine.summary("putin")


def test_topic_summary_groups_by_essay(engine: Engine) -> None:
    summary = engine.topic("NATO")
    assert not summary.abstained and summary.points
    per_doc: dict[str, int] = {}
    order: list[str] = []
    for p in summary.points:
        per_doc[p.doc_id] = per_doc.get(p.doc_id, 0) + 1
        if p.doc_id not in order:
            order.append(p.doc_id)
        assert p.role == "essay" and "nato" in p.quote.lower()
    assert max(per_doc.values()) <= 2 and len(order) >= 2
    # grouped: each essay's points are contiguous
    assert [p.doc_id for p in summary.points] == sorted(
        (p.doc_id for p in summary.points), key=order.index
    )
    _check_points(engine, summary)


def test_topic_outside_the_library_declines(engine: Engine) -> None:
    for topic in ("banana bread", "the World Cup"):
        summary = engine.topic(topic)
        assert summary.abstained and not summary.points


def test_perspectives_side_by_side(engine: Engine) -> None:
    summary = engine.perspectives("Can a ceasefire with Russia hold?")
    authors = [p.author for p in summary.points]
    assert {"Mick Ryan", "Timothy O'Brien", "The Analyst"} <= set(authors)
    for a in set(authors):
        assert authors.count(a) <= 2
    assert all(p.role == "essay" and p.quoted_by is None for p in summary.points)
    _check_points(engine, summary)
    assert engine.perspectives("How do I bake sourdough bread?").abstained


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(topic=st.text(min_size=1, max_size=60) | st.sampled_from(
    ["NATO", "sanctions", "casualties", "Crimea", "Lenin", "drones", "treaties", "Trump"]
))  # fmt: skip
def test_topic_points_are_verbatim(engine: Engine, topic: str) -> None:
    for fn in (engine.topic, engine.perspectives):
        try:
            summary = fn(topic)
        except InputError:
            return
        _check_points(engine, summary)


def test_cli_summary_json(
    seed_index, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("INDEX_DIR", str(seed_index))
    assert main(["summary", "ryan", "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["kind"] == "essay" and obj["abstained"] is False
    keys = {"quote", "doc_id", "title", "author", "role", "start", "end", "score"}
    assert all(keys <= set(p) for p in obj["points"])
    assert main(["summary", "--topic", "sanctions", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["kind"] == "topic"
    assert main(["perspectives", "Will Putin keep a peace deal?", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["kind"] == "perspectives"
    assert main(["summary", "no such essay"]) == 2
    assert "Essays:" in capsys.readouterr().err


def test_essay_names_resolve_most_specific_first(private_engine: Engine) -> None:
    folder = private_engine.settings.seeds_dir
    for n in (5, 50, 51):
        (folder / f"fed-{n}.md").write_text(
            f"---\ntitle: 'Federalist No. {n}: Concerning the Union'\nauthor: Publius\n---\n"
            f"Paper {n} argues that a firm union of the states guards them against foreign "
            f"force and against faction at home, and that the {n} reasons given here hold.\n",
            encoding="utf-8",
        )
    private_engine.index()
    assert private_engine.resolve_essay("Federalist No. 5").doc_id == "fed-5"  # not 50, 51
    assert private_engine.resolve_essay("federalist  no. 50").doc_id == "fed-50"
    assert private_engine.resolve_essay("fed-51").doc_id == "fed-51"
    assert private_engine.summary("Federalist No. 5").subject == "fed-5"
    with pytest.raises(InputError, match="matches several essays"):
        private_engine.resolve_essay("Federalist")
    assert [d.doc_id for d in private_engine.find_essays("federalist no. 5")] == ["fed-5"]


def test_a_lead_in_is_summarised_with_what_it_leads_to(engine: Engine) -> None:
    """The Analyst's thesis is a lead-in and its list: the point keeps them together."""
    text = " ".join(" ".join(p.quote.split()) for p in engine.summary(ANALYST).points)
    assert "real peace can only be obtained through three options: - Russia completely" in text
    assert "Putin’s regime is replaced" in text


def test_key_points_of_a_book_length_essay_take_bounded_memory() -> None:
    """12,000 sentences (the issue's probe, well inside MAX_ESSAY_SENTENCES): their
    similarity matrix whole would be 576 MB of float32; the points must come in a small
    fraction of that, and still be whole sentences of the text."""
    import tracemalloc

    import numpy as np

    from bot.index.chunks import chunk_document
    from bot.index.keypoints import essay_summary_points
    from bot.ingest.documents import parse_document

    n = 12_000
    body = "\n\n".join(
        " ".join(
            f"Ship {i * 4 + k} passed the old canal near the mill at dawn with load {k} aboard."
            for k in range(4)
        )
        for i in range(n // 4)
    )
    doc = parse_document(f"---\ntitle: Log\nauthor: A\n---\n{body}", doc_id="log", path="log.md")
    chunks = chunk_document(doc)
    assert len(chunks.sentences) == n
    rng = np.random.default_rng(0)
    for passage in chunks.passages:
        vecs = rng.normal(size=(len(passage.sentences), 384)).astype(np.float32)
        chunks.sentence_vectors.append(vecs / np.linalg.norm(vecs, axis=1, keepdims=True))
    tracemalloc.start()
    try:
        points = essay_summary_points(chunks)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 150e6, f"{peak / 1e6:.0f} MB"
    assert len(points) == 7
    for p in points:
        assert doc.text[p["start"] : p["end"]].startswith("Ship "), doc.text[p["start"] : p["end"]]
