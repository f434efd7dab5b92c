"""The engine on the real model: quality bars, verbatim quotes, attribution, rebuilds."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from bot.answer.ask import answer
from bot.answer.engine import Engine
from bot.answer.inputs import InputError
from bot.answer.question import question_form
from bot.frontends.evaluate import evaluate
from bot.frontends.text import attribution, render_answer
from bot.index.generations import current_generation
from tests.conftest import DEV_EVAL, EXTRA_EVAL, SEEDS
from tests.published import assert_published, shared_run


def _items(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_dev_set_quality_bars(engine: Engine) -> None:
    result = evaluate(engine, _items(DEV_EVAL))
    assert result["hit@3"] >= 0.9, result["rows"]
    assert result["verbatim"] == 1.0
    assert result["decline_accuracy"] == 1.0, result["rows"]


def test_own_paraphrase_set(engine: Engine) -> None:
    """A second, broader set written for this project (not the held-out one)."""
    result = evaluate(engine, _items(EXTRA_EVAL))
    assert result["hit@3"] >= 0.85, result["rows"]
    assert result["declines"] == result["off_topic"] == 8, result["rows"]
    # The learned decline refuses x11 ("... American losses in Iraq?": two of its six
    # terms are in no essay) though a passage is close (0.55): a known miss, in the note.
    assert result["false_declines"] <= 1, result["rows"]


def test_excerpts_are_verbatim_and_attributed(engine: Engine) -> None:
    ans = engine.ask("Why can't Putin afford to end the war?")
    assert not ans.abstained and 1 <= len(ans.excerpts) <= 3
    for ex in ans.excerpts:
        assert_published(ex.quote, ex.doc_id, SEEDS)
    top = ans.excerpts[0]
    assert top.author == "Mick Ryan" and top.essay.source == "Futura Doctrina"
    assert "via A Blog by Jonathan Low" in attribution(top)


def test_reader_comment_is_not_the_author(engine: Engine) -> None:
    ans = engine.ask("What did a commenter say about Lend Lease winning the war?")
    comment = next(e for e in ans.excerpts if "won the war in 45" in e.quote)
    assert comment.role == "comment" and comment.author == "reader comment"
    assert "I like the Lend Lease idea." in comment.quote  # a short line gets its context
    line = attribution(comment)
    assert line.startswith("reader comment on") and "by The Analyst" in line


def test_quoted_speaker_is_attributed_through_the_author(engine: Engine) -> None:
    ans = engine.ask("What did Steve Witkoff post after the talks?")
    ex = next(e for e in ans.excerpts if "We are encouraged" in e.quote)
    assert ex.author == "Steve Witkoff" and ex.quoted_by == "Mick Ryan"
    assert "quoted by Mick Ryan" in attribution(ex)


def test_declines_out_of_scope(engine: Engine) -> None:
    for q in ("How do I bake banana bread?", "Who won the World Cup?"):
        ans = engine.ask(q)
        assert ans.abstained and not ans.excerpts
        assert "does not cover" in render_answer(ans)


def test_nonear_duplicates_in_an_answer(engine: Engine) -> None:
    # The Ryan essay says "Accepting a negotiated settlement now, where he cannot claim a
    # clear 'win'..." twice; the Analyst lists his three options twice.
    for q in ("Why can't Putin afford to end the war?", "What are the three options for peace?"):
        quotes = [e.quote for e in engine.ask(q, k=5).excerpts]
        assert len(quotes) >= 3
        for i, a in enumerate(quotes):
            for b in quotes[i + 1 :]:
                assert shared_run(a, b) is None, (a, b)


def test_answer_is_diverse_across_essays(engine: Engine) -> None:
    ans = engine.ask("Can a ceasefire with Russia last?", k=3)
    assert len({e.doc_id for e in ans.excerpts}) >= 2


def test_essay_filter_and_context(engine: Engine) -> None:
    doc_id = "obrien-putin-overestimates-the-price-of-ukraine"
    ans = engine.ask("What risks does a ceasefire pose?", doc_id=doc_id)
    assert ans.excerpts and all(e.doc_id == doc_id for e in ans.excerpts)
    ex = ans.excerpts[0]
    wider = engine.context(ex)
    assert wider.start <= ex.start and wider.end >= ex.end and ex.quote in wider.quote
    assert_published(wider.quote, doc_id, SEEDS)
    with pytest.raises(InputError, match="No essay"):
        engine.ask("anything", doc_id="no-such-essay")


@pytest.mark.parametrize("question", ["", "   ", "x" * 20_000, "why\x00 war", "?!?", "\x1b[31mred"])
def test_bad_questions(engine: Engine, question: str) -> None:
    with pytest.raises(InputError):
        engine.ask(question)


def test_index_rebuilds_only_when_the_library_changes(private_engine: Engine) -> None:
    first = private_engine.index()
    assert not first.rebuilt  # a copy of an up-to-date index for a copy of its library
    seed_passages = sum(private_engine.snapshot().passage_counts().values())
    folder = private_engine.settings.seeds_dir
    (folder / "extra.md").write_text(
        "---\ntitle: A note on drones\nauthor: Test Writer\n---\n"
        "Cheap drones have changed how the front line is held. Each side now watches the "
        "other around the clock, and any movement in the open draws fire within minutes.\n",
        encoding="utf-8",
    )
    third = private_engine.index()
    assert third.rebuilt and third.added == ["extra"]
    assert third.passages_embedded == 1 and third.passages_reused == seed_passages
    assert private_engine.index().generation == third.generation  # nothing changed since
    ans = private_engine.ask("How have drones changed the front line?")
    assert ans.excerpts[0].doc_id == "extra" and ans.excerpts[0].author == "Test Writer"
    (folder / "extra.md").unlink()
    fourth = private_engine.index()
    assert fourth.removed == ["extra"] and fourth.passages_embedded == 0
    assert current_generation(private_engine.settings.index_dir) == fourth.generation
    gens = list((private_engine.settings.index_dir / "generations").iterdir())
    assert len(gens) <= 2  # older generations are pruned


def test_a_fresh_index_embeds_every_passage(seed_index: Path, engine: Engine) -> None:
    """The session's seed index was built from nothing: every passage embedded once."""
    passages = sum(engine.snapshot().passage_counts().values())
    db = sqlite3.connect(seed_index / "embeddings.sqlite")
    try:
        assert db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0] == passages
    finally:
        db.close()


def test_model_change_triggers_rebuild(private_engine: Engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    private_engine.index()
    assert not private_engine.is_stale()
    monkeypatch.setattr(type(private_engine.embedder), "key", property(lambda self: "other"))
    assert private_engine.is_stale()


def test_essays_listing_without_model(engine: Engine) -> None:
    essays, skipped = engine.essays()
    assert skipped == []
    assert {e.essay.author for e in essays} == {"Mick Ryan", "The Analyst", "Timothy O'Brien"}
    assert all(e.passages > 0 for e in essays)


@pytest.mark.parametrize(
    ("question", "answer_holds"),
    [
        ("How many soldiers does Russia lose every month?", r"\d|hundred|thousand|million"),
        ("How much Ukrainian land has Russia taken since 2022?", r"\d|hundred|thousand|million"),
        ("Who from the US met Kirill Dmitriev?", r"(?<=[a-z,;:] )[A-Z][a-z]"),
    ],
)
def test_a_question_asking_for_a_figure_or_name_is_answered_with_one(
    engine: Engine, question: str, answer_holds: str
) -> None:
    """The question's form (how many -> a number, who -> a name) shapes the first quote."""
    assert question_form(question) is not None
    top = engine.ask(question).excerpts[0]
    assert re.search(answer_holds, top.quote), top.quote
    assert_published(top.quote, top.doc_id, SEEDS)


def test_why_and_how_questions_ask_for_no_particular_form() -> None:
    for question in ("Why can't Putin afford peace?", "How could a ceasefire hold?",
                     "What did the Analyst argue?"):  # fmt: skip
        assert question_form(question) is None
    assert question_form("When did the war begin?") is not None


def test_a_library_past_the_exact_limit_searches_a_graph_with_the_same_answers(
    private_engine: Engine, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past EXACT_UP_TO passages the index is an HNSW graph of 8-bit codes re-ranked by
    the exact vectors; `index` says so, cosines are the exact ones, and on the seeds (fewer
    passages than the graph weighs per question) it answers exactly alike."""
    from bot.index import ann

    monkeypatch.setattr(ann, "EXACT_UP_TO", 10)
    report = private_engine.index(force=True)
    assert report.search == "hnsw" and "HNSW graph over" in report.summary()
    snap = private_engine.snapshot()
    assert isinstance(snap.dense, ann.HnswIndex) and snap.dense.kind == "hnsw"
    every = slice(None)
    assert np.array_equal(snap.dense.vectors(every), engine.snapshot().dense.vectors(every))
    first = snap.dense.vectors(every)[0]
    scores, rows = snap.dense.search(first[None, :], 1)
    assert rows[0][0] == 0 and scores[0][0] == pytest.approx(float(first @ first))
    exact = evaluate(engine, _items(DEV_EVAL))["rows"]
    graph = evaluate(private_engine, _items(DEV_EVAL))["rows"]
    assert [(r["id"], r["rank"]) for r in graph] == [(r["id"], r["rank"]) for r in exact]
    ex = private_engine.ask("Why can't Putin afford to end the war?").excerpts[0]
    assert_published(ex.quote, ex.doc_id, SEEDS)


def test_a_generation_of_an_older_format_is_rewritten_before_it_is_served(
    private_engine: Engine,
) -> None:
    """An index from before essays' checksums (format 3) is not served unchecked after an
    upgrade: the first question rewrites it, reusing every cached vector."""
    from bot.index.storage import FORMAT_VERSION

    old = private_engine.snapshot().generation
    folder = private_engine.settings.index_dir / "generations" / old
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["essays"]
    manifest["format"] = manifest["fingerprint"]["format"] = 3
    (folder / "manifest.json").write_text(json.dumps(manifest))
    upgraded = Engine(private_engine.settings, private_engine.embedder)  # a new process

    assert upgraded.changed_since_index() is None  # out of date: `index` rewrites it
    ex = upgraded.ask("Why can't Putin afford to end the war?").excerpts[0]
    assert_published(ex.quote, ex.doc_id, SEEDS)
    snap = upgraded.snapshot()
    assert snap.generation != old and snap.manifest["format"] == FORMAT_VERSION == 4
    assert not upgraded.index().rebuilt  # current now


def test_a_snapshot_keeps_answering_after_its_generation_is_deleted(
    private_engine: Engine,
) -> None:
    """Essays' texts are read when first needed; a writer may prune the generation a
    reader still holds, and the reader's answers stay whole and verbatim."""
    import shutil

    from bot.index.generations import load_snapshot

    question = "Why can't Putin afford to end the war?"
    snap = load_snapshot(private_engine.settings.index_dir)
    shutil.rmtree(private_engine.settings.index_dir / "generations" / snap.generation)
    ans = answer(snap, private_engine.read_question(snap, question), 3)
    assert ans.excerpts and all(e.quote for e in ans.excerpts)
    for ex in ans.excerpts:
        assert_published(ex.quote, ex.doc_id, SEEDS)
