"""Declining questions about names the library never mentions, checked against the files."""

from __future__ import annotations

import re
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from bot.answer.engine import Engine
from bot.answer.names import initials, named_authors, surname, without_authors
from bot.answer.scope import decline_features, rarity
from bot.frontends.text import render_answer
from tests.conftest import SEEDS, asked


def _library_text() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(SEEDS.iterdir()) if p.is_file())


def _mentioned(name: str) -> bool:
    return re.search(rf"\b{re.escape(name)}", _library_text(), re.IGNORECASE) is not None


@pytest.mark.parametrize(
    ("question", "names"),
    [
        ("What did the essays say about Robespierre?", ["Robespierre"]),
        (
            "Did the authors compare this war with the Falklands or with Agincourt?",
            ["Falklands", "Agincourt"],
        ),  # fmt: skip
    ],
)
def test_a_name_no_essay_mentions_is_declined_by_name(
    engine: Engine, question: str, names: list[str]
) -> None:
    assert not any(_mentioned(n) for n in names)  # the truth, read from the files
    ans = engine.ask(question)
    assert ans.abstained and not ans.excerpts
    assert list(ans.unknown_names) == names
    assert f"no essay mentions {', '.join(names)}" in render_answer(ans)


@pytest.mark.parametrize(
    "question",
    [
        "What does Zelensky want from a ceasefire?",  # a name the essays use
        "What does Zelenskyy want from a ceasefire?",  # the same name spelled another way
        "Ceasefire: what would Putin accept?",  # capitals that open a sentence
        "WHY CAN'T PUTIN AFFORD PEACE?",  # shouting says nothing about names
    ],
)
def test_known_names_and_sentence_capitals_are_not_unknown(engine: Engine, question: str) -> None:
    assert _mentioned("Zelensky") and _mentioned("Putin")
    ans = engine.ask(question)
    assert ans.unknown_names == ()
    assert not ans.abstained


def test_authors_are_recognised_by_surname_and_initials() -> None:
    authors = frozenset({"Franklin D. Roosevelt", "John F. Kennedy", "W. E. B. Du Bois",
                         "Mark Twain"})  # fmt: skip
    snap = SimpleNamespace(authors=lambda: authors)  # a Snapshot's authors are a frozenset
    assert initials("Franklin D. Roosevelt") == "FDR" and initials("Mark Twain") == ""
    assert named_authors(snap, "Who did FDR blame?") == {"Franklin D. Roosevelt"}  # type: ignore[arg-type]
    assert named_authors(snap, "What was JFK's view of talks?") == {"John F. Kennedy"}  # type: ignore[arg-type]
    assert named_authors(snap, "Why does Du Bois say so?") == {"W. E. B. Du Bois"}  # type: ignore[arg-type]
    assert named_authors(snap, "Who wrote about the blameless?") == set()  # type: ignore[arg-type]


def test_a_question_without_its_authors_is_the_same_whatever_their_order() -> None:
    both = ["George W. Bush", "George H. W. Bush"]
    for order in (both, both[::-1]):
        authors = _Ordered(order)
        assert without_authors("What did George W. Bush say of Islam?", authors) == (
            "What did say of Islam?"
        )


class _Ordered(AbstractSet[str]):
    """A set that iterates in the order given (as a hash seed may order a frozenset)."""

    def __init__(self, items: list[str]) -> None:
        self._items = items

    def __contains__(self, item: object) -> bool:
        return item in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def test_a_name_inside_another_authors_name_names_only_that_author() -> None:
    authors = frozenset({"George W. Bush", "George H. W. Bush", "John F. Kennedy"})
    snap = SimpleNamespace(authors=lambda: authors)
    assert named_authors(snap, "What did George W. Bush say of Islam?") == {"George W. Bush"}  # type: ignore[arg-type]
    assert named_authors(snap, "What did George H. W. Bush promise?") == {"George H. W. Bush"}  # type: ignore[arg-type]
    assert named_authors(snap, "Where did Bush stand?") == {"George W. Bush", "George H. W. Bush"}  # type: ignore[arg-type]
    assert named_authors(snap, "Did Bush answer JFK?") == {"George W. Bush", "George H. W. Bush",  # type: ignore[arg-type]
                                                            "John F. Kennedy"}  # fmt: skip


def test_a_suffix_is_not_the_name_people_use() -> None:
    authors = frozenset({"Oliver Wendell Holmes Sr.", "Martin Luther King, Jr."})
    snap = SimpleNamespace(authors=lambda: authors)
    assert surname("Oliver Wendell Holmes Sr.") == "Holmes"
    assert initials("Oliver Wendell Holmes Sr.") == "OWH"
    assert named_authors(snap, "Summarize Holmes's outlook") == {"Oliver Wendell Holmes Sr."}  # type: ignore[arg-type]
    assert named_authors(snap, "What did King dream of?") == {"Martin Luther King, Jr."}  # type: ignore[arg-type]
    assert named_authors(snap, "Who was the Sr. partner?") == set()  # type: ignore[arg-type]


def test_a_name_spelled_otherwise_is_answered_when_the_rest_matches_closely(
    engine: Engine,
) -> None:
    """ "Kiev" is in no essay (they write "Kyiv"), but the question is plainly about them."""
    assert not _mentioned("Kiev") and _mentioned("Kyiv")
    ans = engine.ask("Why can't Kiev accept a ceasefire now?")
    assert not ans.abstained and ans.unknown_names == ()
    assert any("ceasefire" in e.quote.lower() for e in ans.excerpts)


def test_an_essays_year_and_an_authors_initials_are_words_the_library_knows(
    private_engine: Engine, library: Path
) -> None:
    """A reader names an essay by the date every answer shows ("the 1987 essay") and an
    author as the engine already does ("LBJ"): neither counts as a word no essay uses."""
    essay = library / "analyst-diplomatic-end-to-the-war.md"
    text = essay.read_text(encoding="utf-8")
    assert "1987" not in text and "date: null" in text
    essay.write_text(text.replace("date: null", "date: 1987-06-12", 1), encoding="utf-8")
    private_engine.index()
    snap = private_engine.snapshot()
    cosines = np.array([0.5])
    # "sanction" is in the essays; "1987" now only in a date; "zeppelin" nowhere
    assert (
        decline_features(snap, asked(snap, "The 1987 essay on sanctions?"), cosines, 0.4)[2] == 0.0
    )
    assert decline_features(snap, asked(snap, "Zeppelin sanctions?"), cosines, 0.4)[2] > 0.0
    lbj = _library({"war"}, {"Lyndon B. Johnson"})
    assert decline_features(lbj, asked(lbj, "What did LBJ say of the war?"), cosines, 0.4)[2] == 0.0  # type: ignore[arg-type]
    assert decline_features(lbj, asked(lbj, "What did LBJ say of peace?"), cosines, 0.4)[2] > 0.0  # type: ignore[arg-type]


def _library(vocabulary: set[str], authors: set[str]) -> SimpleNamespace:
    """What the decline reads of a library: its words (stemmed) and its authors."""
    return SimpleNamespace(vocabulary=lambda: frozenset(vocabulary),
                           authors=lambda: frozenset(authors))  # fmt: skip


def test_a_word_the_essays_do_not_use_counts_by_how_rare_it_is_in_english() -> None:
    """A reader's own common word ("lifestyle") weighs less toward declining than a rare
    thing the library never discusses ("Sputnik"); a term the library has weighs nothing,
    and a word English has never seen weighs fully. English frequencies are wordfreq's:
    "lifestyle" is far commoner than "sputnik", and "the" the commonest of all."""
    lib = _library({"war", "peac"}, {"Ada Lovelace"})
    features = [decline_features(lib, asked(lib, q), np.array([0.5]), 0.4)[2]  # type: ignore[arg-type]
                for q in ("War and lifestyle?", "War and Sputnik?", "War and peace?",
                          "War and qwzxvk?")]  # fmt: skip
    common, rare, known, never = features
    assert known == 0.0
    assert 0.0 < common < rare < never == 0.5  # one of the two terms, at full weight
    assert rarity("the") < 0.1 < rarity("lifestyle") < rarity("sputnik") < rarity("qwzxvk") == 1.0
