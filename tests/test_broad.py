"""Broad questions ("What is the Analyst's view of the war?") get the sentences that carry
an essay's main point, by the models learned with the shipped tuning
(train/fit_broad.py); other questions are answered from passages as before; the models'
file is refused when malformed or fitted for another tuning."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from bot.answer.broad import ASKS_FEATURES, ESSAY_FEATURES, THESIS_FEATURES, read_broad, sidecar
from bot.answer.engine import Engine
from bot.frontends.evaluate import read_questions
from bot.index.embed import BUNDLED_TUNING, tuning_sha256
from bot.settings import SettingsError

SHIPPED = BUNDLED_TUNING.parent / "minilm-lora.broad.json"
SEEDS = Path(__file__).resolve().parent.parent / "seeds"
DEV = Path(__file__).parent / "data" / "dev.jsonl"
#: A whole sentence as the essays print it: a capital (after any opening quote) to a
#: full stop, an exclamation or a closing quote.
WHOLE_SENTENCE = re.compile(r"^[\"“‘'(]*[A-Z0-9].*[.!…][\"”’')]*$", re.S)


def _on_disk(text: str) -> str:
    return " ".join(text.split())


def test_the_shipped_models_sit_beside_the_shipped_delta_and_name_their_making() -> None:
    assert sidecar(BUNDLED_TUNING) == SHIPPED
    data = json.loads(SHIPPED.read_text())
    assert data["asks"]["features"] == list(ASKS_FEATURES)
    words = set(data["asks"]["words"])
    assert {"gist", "summarize", "what's"} <= words  # how readers ask for the gist
    assert not {"bitcoin", "smartphone"} & words  # what off-topic questions ask about
    assert data["essay"]["features"] == list(ESSAY_FEATURES)
    assert data["thesis"]["features"] == list(THESIS_FEATURES)
    assert data["pairs_with"]["sha256"] == tuning_sha256(BUNDLED_TUNING)
    provenance = data["provenance"]
    assert len(provenance["commit"]) == 40 and provenance["tree_clean"] is True
    assert len(provenance["data_sha256"]) == 64
    assert SHIPPED.stat().st_size < 200_000  # small: three logistic models


def test_a_broad_question_about_an_author_gets_their_own_whole_sentences(engine: Engine) -> None:
    answer = engine.ask("What is the Analyst's view of the war?", k=3)
    assert not answer.abstained and len(answer.excerpts) == 3
    essay = (SEEDS / "analyst-diplomatic-end-to-the-war.md").read_text(encoding="utf-8")
    for excerpt in answer.excerpts:
        assert excerpt.author == "The Analyst"
        assert _on_disk(excerpt.quote) in _on_disk(essay)
        assert WHOLE_SENTENCE.match(excerpt.quote.strip()), excerpt.quote


def test_a_broad_question_naming_another_author_quotes_only_them(engine: Engine) -> None:
    answer = engine.ask("What's Mick Ryan's main argument?", k=3)
    assert not answer.abstained
    assert {e.author for e in answer.excerpts} == {"Mick Ryan"}


def test_the_seeds_questions_are_not_taken_for_broad(engine: Engine) -> None:
    """The dev set asks about passages (its rows name the answering phrase): none is read
    as broad, so each is answered from passages as before."""
    broad = engine.broad
    assert broad is not None
    snap = engine.snapshot()
    for item in read_questions(DEV):
        assert not broad.is_broad(engine.read_question(snap, item["question"])), item["question"]


def test_a_broad_question_about_someone_the_library_lacks_is_declined(engine: Engine) -> None:
    answer = engine.ask("What is Tolstoy's view of the war?")
    assert answer.abstained and answer.unknown_names == ("Tolstoy",)


def test_asking_within_one_essay_is_answered_from_its_passages(engine: Engine) -> None:
    answer = engine.ask(
        "What is the Analyst's view of the war?", doc_id="ryan-putin-cannot-afford-a-peace-deal"
    )
    assert all(e.doc_id == "ryan-putin-cannot-afford-a-peace-deal" for e in answer.excerpts)


def test_abstain_threshold_turns_the_learned_parts_off(engine: Engine) -> None:
    strict = Engine(engine.settings.with_(abstain_threshold=0.5), engine.embedder)
    assert strict.broad is None


def _copy(tmp_path: Path, change: dict[str, object]) -> Path:
    data = json.loads(SHIPPED.read_text())
    data.update(change)
    path = tmp_path / "broad.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"pairs_with": {"sha256": "0" * 64}}, "another model tuning"),
        ({"cut": "nan"}, "not a finite number"),
        (
            {
                "essay": {
                    "features": ["title_share"],
                    "mean": [0],
                    "scale": [1],
                    "coef": [1],
                    "intercept": 0,
                }
            },
            "other features",
        ),  # fmt: skip
    ],
)
def test_a_malformed_or_foreign_file_is_refused(
    tmp_path: Path, engine: Engine, change: dict[str, object], says: str
) -> None:
    path = _copy(tmp_path, change)
    with pytest.raises(ValueError, match=says):
        read_broad(path, BUNDLED_TUNING)
    with pytest.raises(SettingsError, match=says):
        _ = Engine(engine.settings, engine.embedder, broad_file=path).broad


def test_widths_that_disagree_are_refused(tmp_path: Path) -> None:
    data = json.loads(SHIPPED.read_text())
    data["thesis"]["coef"] = data["thesis"]["coef"][:-1]
    path = tmp_path / "broad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="finite numbers per array"):
        read_broad(path, BUNDLED_TUNING)


def test_a_model_without_the_file_answers_every_question_from_passages(tmp_path: Path) -> None:
    delta = tmp_path / "mine.npz"
    shutil.copy(BUNDLED_TUNING, delta)
    assert read_broad(sidecar(delta), delta) is None
