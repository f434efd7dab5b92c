"""Property: whatever is asked, every quote is a verbatim slice of its essay as published."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.ingest.documents import library_files, read_document
from bot.answer.engine import Engine, InputError
from tests.conftest import SEEDS

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


def _ws(text: str) -> str:
    return " ".join(text.split())


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
    snap = engine.snapshot()
    for ex in ans.excerpts:
        doc = snap.docs[ex.doc_id]
        assert doc.text[ex.start : ex.end] == ex.quote
        published = (SEEDS / doc.path.split("/")[-1]).read_text(encoding="utf-8")
        assert _ws(ex.quote) in _ws(published)
        assert ex.role in ("essay", "comment")
