"""Every essay in seeds/ is valid, clean and correctly attributed (one test, all failures)."""

from __future__ import annotations

import re

from bot.ingest.chunking import make_passages, split_sentences
from bot.ingest.documents import library_files, read_document
from bot.ingest.model import DocumentError, Role
from tests.conftest import RAW_SEEDS, SEEDS

LEFTOVERS = re.compile(
    r"LikeLike|Liked by \d+ people|Post a Comment|\b0 comments:|^Image:|A Blog by Jonathan Low",
    re.M,
)


def _problems() -> list[str]:
    problems: list[str] = []
    files = library_files(SEEDS)
    if len(files) < 3:
        problems.append(f"expected the three seed essays, found {len(files)}")
    for path in files:
        try:
            doc = read_document(path)
        except DocumentError as exc:
            problems.append(str(exc))
            continue
        name = path.name
        for key in ("title", "author", "source"):
            if not getattr(doc.meta, key):
                problems.append(f"{name}: missing {key}")
        if "original_file" in doc.extra:
            raw = (RAW_SEEDS / doc.extra["original_file"]).read_text(encoding="utf-8")
            if doc.text.strip() != raw.strip():
                problems.append(f"{name}: body differs from the published text")
        for para in doc.paragraphs:
            text = doc.text[para.start : para.end]
            if LEFTOVERS.search(text):
                problems.append(f"{name} ¶{para.number}: page leftover kept: {text[:60]!r}")
            if para.role == Role.COMMENT and para.author == doc.meta.author:
                problems.append(f"{name}: a reader comment is attributed to the author")
            if para.author is None and para.role != Role.COMMENT:
                problems.append(f"{name} ¶{para.number}: essay text with no author")
        sentences = split_sentences(doc)
        for s in sentences:
            words = len(doc.text[s.start : s.end].split())
            if words > 180:
                problems.append(f"{name}: a {words}-word sentence would be truncated")
        for p in make_passages(doc, sentences):
            words = len(p.embed_text(doc.text, sentences).split())
            if words > 180:
                problems.append(f"{name}: a {words}-word passage would be truncated")
    return problems


def test_every_seed_is_valid() -> None:
    problems = _problems()
    assert not problems, "\n".join(problems)


def test_seed_attribution_facts() -> None:
    docs = {d.meta.doc_id: d for d in map(read_document, library_files(SEEDS))}
    ryan = docs["ryan-putin-cannot-afford-a-peace-deal"]
    assert ryan.meta.author == "Mick Ryan" and ryan.meta.source == "Futura Doctrina"
    assert ryan.meta.via == "A Blog by Jonathan Low"  # the blog reposts; it is not the author
    by_start = {ryan.text[p.start : p.start + 30]: p for p in ryan.paragraphs}
    low = next(p for k, p in by_start.items() if k.startswith("Putin, all of his oligarchs"))
    assert low.author == "Jonathan Low"
    witkoff = next(p for k, p in by_start.items() if k.startswith("We are encouraged"))
    assert (witkoff.author, witkoff.quoted_by) == ("Steve Witkoff", "Mick Ryan")

    analyst = docs["analyst-diplomatic-end-to-the-war"]
    comments = [p for p in analyst.paragraphs if p.role == Role.COMMENT]
    assert len(comments) == 3 and all(p.author is None for p in comments)
    assert analyst.text[comments[0].start :].startswith("I like the Lend Lease idea.")
    last_essay = [p for p in analyst.paragraphs if p.role != Role.COMMENT][-1]
    assert analyst.text[last_essay.start : last_essay.end].endswith("never truly going to end.")

    obrien = docs["obrien-putin-overestimates-the-price-of-ukraine"]
    assert obrien.meta.author == "Timothy O'Brien" and "Bloomberg" in (obrien.meta.source or "")
    assert obrien.paragraphs[0].author != "Timothy O'Brien"  # the relaying site's intro
