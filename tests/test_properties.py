"""Property: whatever is asked, every quote is a verbatim slice of its essay as published."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.answer.engine import Engine
from bot.answer.inputs import InputError
from bot.ingest.documents import library_files, read_document
from tests.conftest import SEEDS
from tests.published import assert_published

WORDS = sorted(
    {
        w.lower()
        for p in library_files(SEEDS)
        for w in re.findall(r"[A-Za-z’']{3,}", read_document(p).text)
    }
)
QUESTION_WORDS = ["why", "what", "how", "does", "who", "will", "is", "can"]

questions = st.one_of(
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=12).map(" ".join),
    st.tuples(st.sampled_from(QUESTION_WORDS), st.lists(st.sampled_from(WORDS), max_size=8)).map(
        lambda t: f"{t[0]} {' '.join(t[1])}?"
    ),
    st.text(min_size=1, max_size=200),
)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(question=questions)
def test_quotes_are_verbatim(engine: Engine, question: str) -> None:
    try:
        ans = engine.ask(question, k=4)
    except InputError:
        return
    for ex in ans.excerpts:
        assert_published(ex.quote, ex.doc_id, SEEDS)
        assert ex.role in ("essay", "comment")
