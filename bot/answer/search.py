"""Answering: hybrid retrieval, verbatim quote selection, de-duplication, honest declines.

Everything here is a pure function of a loaded :class:`~bot.index.store.Snapshot` and a query
vector, and returns small frozen dataclasses, so rendering and attribution need no model.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from bot.index.lexical import tokenize
from bot.index.store import Snapshot
from bot.ingest.documents import COMMENT, Document

RRF_K = 60
CANDIDATES = 50  # from each retriever
RERANK = 20  # fused passages examined for quotes
MAX_QUOTE_SENTENCES = 3
SHORT_SENTENCE_WORDS = 9
NEAR_DUPLICATE = 0.6  # token Jaccard above which two quotes say the same thing
LEXICAL_WEIGHT = 0.2  # weight of query-term coverage in a quote's score
WINDOW_COST = 0.01  # a quote's score given up per sentence beyond the first
PASSAGE_WEIGHT = 0.35  # weight of the passage's similarity in an excerpt's score
DIVERSITY = 0.04  # score given up per excerpt already taken from the same essay
UNANSWERED_QUESTION = 0.1  # score given up by a quote made only of questions
UNKNOWN_COMMENTER = "reader comment"


@dataclass(frozen=True)
class Excerpt:
    """A verbatim quote with everything needed to attribute it.

    ``quote == document.text[start:end]`` always holds. ``author`` is who wrote these words:
    the essay's author, someone the essay quotes (then ``quoted_by`` names the essay's
    author), or for a reader comment its writer if known, else "reader comment".
    """

    quote: str
    doc_id: str
    title: str
    author: str
    date: str | None
    source: str | None
    role: str
    start: int
    end: int
    score: float
    paragraph: int
    essay_author: str | None = None
    note: str | None = None
    quoted_by: str | None = None
    via: str | None = None
    url: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass(frozen=True)
class Answer:
    """The excerpts for a question, best first, or a decline."""

    question: str
    abstained: bool
    excerpts: tuple[Excerpt, ...]
    best_similarity: float = 0.0


def make_excerpt(
    doc: Document, start: int, end: int, paragraph_index: int, score: float
) -> Excerpt:
    """Build an excerpt for ``doc.text[start:end]``, attributed by its paragraph."""
    para = doc.paragraphs[paragraph_index]
    if para.role == COMMENT:
        author = para.author or UNKNOWN_COMMENTER
    else:
        author = para.author or doc.author or "unknown author"
    return Excerpt(
        quote=doc.text[start:end],
        doc_id=doc.doc_id,
        title=doc.title,
        author=author,
        date=doc.date,
        source=doc.source,
        role=para.role,
        start=start,
        end=end,
        score=round(float(score), 4),
        paragraph=para.number,
        essay_author=doc.author,
        note=para.note,
        quoted_by=para.quoted_by,
        via=doc.via,
        url=doc.url,
    )


def _word_count(text: str) -> int:
    return len(text.split())


@lru_cache(maxsize=1)
def _lexical_pool() -> ThreadPoolExecutor:
    """Threads BM25 runs on while FAISS scans (made on the first question)."""
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="bm25")


def _fuse(rankings: list[list[int]]) -> dict[int, float]:
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, pid in enumerate(ranking):
            fused[pid] = fused.get(pid, 0.0) + 1.0 / (RRF_K + rank + 1)
    return fused


def _doc_range(snap: Snapshot, doc_id: str) -> tuple[int, int]:
    rows = [i for i, p in enumerate(snap.passages) if p.doc_id == doc_id]
    return (rows[0], rows[-1] + 1) if rows else (0, 0)


def retrieve(
    snap: Snapshot, qvec: np.ndarray, q_tokens: list[str], doc_id: str | None = None
) -> tuple[list[int], dict[int, float]]:
    """Fuse dense and BM25 rankings of passages.

    Returns:
        Fused passage rows, best first, and the dense cosine of each row FAISS returned.
    """
    n = len(snap.passages)
    if n == 0:
        return [], {}
    k = min(CANDIDATES, n)
    if doc_id is None:
        # Both searches release the GIL: BM25 runs on the other core while FAISS scans
        # (100,000 passages: p95 of the two 18 ms one after the other, 12 ms side by side).
        lex_job = _lexical_pool().submit(snap.lexical.search, q_tokens, k)
        sims, ids = snap.dense.search(qvec.reshape(1, -1).astype(np.float32), k)
        lexical = [int(i) for i in lex_job.result()[0]]
    else:
        import faiss

        lo, hi = _doc_range(snap, doc_id)
        if hi <= lo:
            return [], {}
        params = faiss.SearchParameters(sel=faiss.IDSelectorRange(lo, hi))  # type: ignore[call-arg]
        sims, ids = snap.dense.search(
            qvec.reshape(1, -1).astype(np.float32), min(k, hi - lo), params=params
        )
        lexical = []
        if q_tokens:
            scores = np.asarray(snap.lexical.retriever.get_scores(q_tokens))[lo:hi]
            order = np.argsort(-scores)[:k]
            lexical = [lo + int(i) for i in order if scores[i] > 0]
    dense = [int(i) for i in ids[0] if i >= 0]
    cosine = {int(i): float(s) for i, s in zip(ids[0], sims[0], strict=True) if i >= 0}
    fused = _fuse([dense, lexical])
    return sorted(fused, key=lambda pid: -fused[pid]), cosine


def _scan_windows(
    sims: list[float], toks: list[frozenset[str]], para: list[int], q_tokens: set[str]
) -> tuple[float, int, int]:
    """The best run of one to three consecutive sentences of one paragraph.

    A run scores its best sentence's cosine, plus credit for the share of the question's
    terms it contains, less a small cost per extra sentence.

    Returns:
        The run's score and its first and last positions in the passage.
    """
    best = (-np.inf, 0, 0)
    for lo in range(len(sims)):
        covered: set[str] = set()
        top = -1.0
        for hi in range(lo, min(len(sims), lo + MAX_QUOTE_SENTENCES)):
            if para[hi] != para[lo]:
                break
            top = max(top, sims[hi])
            score = top - WINDOW_COST * (hi - lo)
            if q_tokens:
                covered |= toks[hi] & q_tokens
                score += LEXICAL_WEIGHT * len(covered) / len(q_tokens)
            if score > best[0]:
                best = (score, lo, hi)
    return best


def _ends_with(text: str, marks: tuple[str, ...]) -> bool:
    return text.rstrip("\"”’') ").endswith(marks)


def _complete_window(texts: list[str], para: list[int], lo: int, hi: int) -> tuple[int, int]:
    """Widen a run so it stands alone: a question or a lead-in ("... stated that:") is
    answered by the sentence after it, and a very short run takes a neighbour."""

    def same_para(j: int) -> bool:
        return 0 <= j < len(texts) and para[j] == para[lo]

    while (
        hi - lo + 1 < MAX_QUOTE_SENTENCES
        and same_para(hi + 1)
        and _ends_with(texts[hi], ("?", ":"))
    ):
        hi += 1
    while hi - lo + 1 < MAX_QUOTE_SENTENCES and (
        sum(_word_count(t) for t in texts[lo : hi + 1]) < SHORT_SENTENCE_WORDS
    ):
        if same_para(lo - 1):
            lo -= 1
        elif same_para(hi + 1):
            hi += 1
        else:
            break
    return lo, hi


def _best_window(
    snap: Snapshot, pid: int, qvec: np.ndarray, q_tokens: set[str]
) -> tuple[int, int, float, float]:
    """The best quote inside one passage (see :func:`_scan_windows`), made to stand alone.

    Returns:
        First and last sentence rows, the run's score and its best sentence's cosine.
    """
    p = snap.passages[pid]
    rows = np.arange(p.first_sentence, p.first_sentence + p.n_sentences)
    sims = snap.sent_vectors[rows] @ qvec
    toks = [snap.sentence_tokens(int(r)) for r in rows] if q_tokens else []
    para = snap.sent_para[rows].tolist()
    window, lo, hi = _scan_windows(sims.tolist(), toks, para, q_tokens)
    texts = [snap.sentence_text(int(r)) for r in rows]
    lo, hi = _complete_window(texts, para, lo, hi)
    if all(_ends_with(t, ("?",)) for t in texts[lo : hi + 1]):
        window -= UNANSWERED_QUESTION  # a quote that only asks answers nothing
    return int(rows[lo]), int(rows[hi]), window, float(sims[lo : hi + 1].max())


def quote_tokens(text: str) -> set[str]:
    """Lower-cased words of a quote, for near-duplicate checks."""
    return set(re.findall(r"\w+", text.lower()))


def near_duplicate(ta: set[str], tb: set[str]) -> bool:
    """Two quotes' word sets say the same thing (one mostly inside the other, or similar)."""
    if not ta or not tb:
        return False
    shared = len(ta & tb)
    return shared / min(len(ta), len(tb)) >= 0.8 or shared / len(ta | tb) >= NEAR_DUPLICATE


def candidates(
    snap: Snapshot,
    qvec: np.ndarray,
    question: str,
    threshold: float,
    doc_id: str | None = None,
    rerank: int = RERANK,
) -> tuple[list[Excerpt], float]:
    """The best quote of each of the top fused passages that is relevant enough.

    Returns:
        Excerpts, best first, and the best similarity seen (for declining).
    """
    q_tokens = tokenize(question)
    ranked, cosine = retrieve(snap, qvec, q_tokens, doc_id)
    q_set = set(q_tokens)
    scored = []
    best_sim = max(cosine.values(), default=0.0)
    for pid in ranked[:rerank]:
        first, last, window, sent_sim = _best_window(snap, pid, qvec, q_set)
        passage_sim = cosine.get(pid)
        if passage_sim is None:
            p = snap.passages[pid]
            rows = slice(p.first_sentence, p.first_sentence + p.n_sentences)
            passage_sim = float((snap.sent_vectors[rows] @ qvec).max())
        best_sim = max(best_sim, sent_sim)
        score = (1 - PASSAGE_WEIGHT) * window + PASSAGE_WEIGHT * passage_sim
        scored.append((score, first, last, max(sent_sim, passage_sim)))
    if best_sim < threshold:
        return [], best_sim
    pool: list[Excerpt] = []
    for score, first, last, relevance in sorted(scored, key=lambda t: -t[0]):
        if relevance >= threshold:
            doc = snap.docs[snap.sent_doc[first]]
            start, end = int(snap.sent_span[first][0]), int(snap.sent_span[last][1])
            pool.append(make_excerpt(doc, start, end, int(snap.sent_para[first]), score))
    return pool, best_sim


def select(
    pool: list[Excerpt],
    k: int,
    per_group: int | None = None,
    group: Callable[[Excerpt], str] = lambda e: e.doc_id,
    penalty: float = DIVERSITY,
) -> list[Excerpt]:
    """Pick up to `k` excerpts, best first, without repeats.

    Greedy: each pick gives up `penalty` per excerpt already taken from the same group
    (a clearly better quote still wins, a near tie goes to another voice), and skips
    quotes that overlap or nearly repeat one already chosen.

    Args:
        pool: Candidates.
        k: How many at most.
        per_group: A hard cap per group, if any.
        group: What counts as the same voice (the essay by default).
        penalty: Score given up per excerpt already taken from the group.
    """
    pool = list(pool)
    chosen: list[Excerpt] = []
    chosen_tokens: list[set[str]] = []
    counts: dict[str, int] = {}
    while pool and len(chosen) < k:
        best = max(pool, key=lambda e: e.score - penalty * counts.get(group(e), 0))
        pool.remove(best)
        toks = quote_tokens(best.quote)
        if any(
            near_duplicate(toks, ct)
            or (c.doc_id == best.doc_id and c.start < best.end and best.start < c.end)
            for c, ct in zip(chosen, chosen_tokens, strict=True)
        ):
            continue
        if per_group is not None and counts.get(group(best), 0) >= per_group:
            continue
        counts[group(best)] = counts.get(group(best), 0) + 1
        chosen.append(best)
        chosen_tokens.append(toks)
    return chosen


def answer(
    snap: Snapshot,
    qvec: np.ndarray,
    question: str,
    k: int = 3,
    *,
    threshold: float,
    doc_id: str | None = None,
) -> Answer:
    """Find the best verbatim excerpts for a question, or decline.

    Args:
        snap: The loaded index.
        qvec: The question's unit embedding.
        question: The question text (for lexical matching).
        k: How many excerpts at most.
        threshold: Decline when no sentence or passage is at least this similar
            (``Settings.abstain_threshold``).
        doc_id: Only search this essay.

    Returns:
        The answer.
    """
    pool, best_sim = candidates(snap, qvec, question, threshold, doc_id)
    chosen = select(pool, k)
    return Answer(question, not chosen, tuple(chosen), round(best_sim, 4))


def context(snap: Snapshot, excerpt: Excerpt, before: int = 2, after: int = 2) -> Excerpt:
    """The excerpt widened by a few sentences of the same paragraph block.

    Returns:
        A new excerpt (still verbatim) covering the surrounding sentences.
    """
    doc = snap.docs[excerpt.doc_id]
    rows = [i for i, d in enumerate(snap.sent_doc) if d == excerpt.doc_id]
    spans = [(int(snap.sent_span[r][0]), int(snap.sent_span[r][1])) for r in rows]
    inside = [j for j, (s, e) in enumerate(spans) if s < excerpt.end and e > excerpt.start]
    if not inside:
        return excerpt
    block = doc.paragraphs[int(snap.sent_para[rows[inside[0]]])].block
    lo, hi = inside[0], inside[-1]
    for _ in range(before):
        if lo > 0 and doc.paragraphs[int(snap.sent_para[rows[lo - 1]])].block == block:
            lo -= 1
    for _ in range(after):
        if hi + 1 < len(rows) and doc.paragraphs[int(snap.sent_para[rows[hi + 1]])].block == block:
            hi += 1
    return make_excerpt(
        doc, spans[lo][0], spans[hi][1], int(snap.sent_para[rows[lo]]), excerpt.score
    )
