"""Which passages may hold the answer: every signal the index has, combined by weights.

Three rankings of passages are fused by weighted reciprocal rank: the passage vectors
(FAISS), BM25 over passage texts, and the passages' best sentences (each sentence
embedded on its own). A question that names an essay's author, or the words of its
title, lifts that essay. The weights are set from data (see :data:`WEIGHTS`).
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from bot.index.lexical import tokenize
from bot.index.store import Snapshot

RRF_K = 60
CANDIDATES = 50  # passages from each ranking
SENTENCE_CANDIDATES = 150  # sentences from the sentence ranking
_INITIAL = re.compile(r"^[A-Z]\.$|^[A-Z]\.[A-Z]\.")


@dataclass(frozen=True)
class Weights:
    """How the signals combine.

    Attributes:
        dense: Weight of the passage-vector ranking in the fusion.
        lexical: Weight of the BM25 ranking.
        sentence: Weight of the best-sentence ranking.
        named: Added to a passage whose essay's author the question names.
        title: Added, times the share of the title's words in the question.
        top: A quote's best sentence's cosine, in the quote's own score.
        together: The cosine of the quote's sentences taken together (mean vector).
        coverage: The share of the question's terms the quote contains.
        extra_sentence: Given up per sentence beyond the first.
        window: Weight of the quote's own score in an excerpt's score.
        passage: Weight of the passage's cosine in an excerpt's score.
        fused: Weight of the fused retrieval score (0..1) in an excerpt's score.
    """

    dense: float = 1.0
    lexical: float = 0.5
    sentence: float = 0.0
    named: float = 0.2
    title: float = 0.05
    top: float = 1.0
    together: float = 0.5
    coverage: float = 0.2
    extra_sentence: float = 0.01
    window: float = 0.65
    passage: float = 0.35
    fused: float = 0.1


#: Chosen by a grid search over the question sets, cross-validated across libraries: the
#: weights chosen on the seeds' sets alone, and those chosen on library2 alone, each held
#: the other library's figures (bench/README.md has the table). The best-sentence ranking
#: earned no weight there; it is kept as a signal to weigh again as the sets grow.
WEIGHTS = Weights()


@dataclass(frozen=True)
class Candidate:
    """A passage worth looking into for a quote, with its retrieval signals."""

    row: int
    cosine: float  # the passage vector's cosine with the question
    fused: float  # weighted reciprocal-rank fusion, 0..1
    boost: float  # named author and title words


@lru_cache(maxsize=1)
def _lexical_pool() -> ThreadPoolExecutor:
    """Threads BM25 runs on while FAISS scans (made on the first question)."""
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="bm25")


def surname(name: str) -> str:
    """The part of a name people use alone: after the last initial ("W. E. B. Du Bois" ->
    "Du Bois", "John F. Kennedy" -> "Kennedy"), else the last word ("Mark Twain")."""
    words = name.split()
    initials = [i for i, w in enumerate(words) if _INITIAL.match(w)]
    rest = words[initials[-1] + 1 :] if initials else words[-1:]
    return " ".join(rest) or name


def _mentions(question: str, name: str) -> bool:
    pattern = rf"(?<!\w){re.escape(name.casefold())}(?!\w)"
    return re.search(pattern, question.casefold()) is not None


def named_authors(snap: Snapshot, question: str) -> set[str]:
    """The essay authors a question names, by full name or surname."""
    return {a for a in snap.authors() if _mentions(question, a) or _mentions(question, surname(a))}


@lru_cache(maxsize=65536)
def _title_words(title: str) -> frozenset[str]:
    return frozenset(tokenize(title))


def title_share(title: str, q_tokens: set[str]) -> float:
    """The share of a title's words that the question uses (0 when the title has none)."""
    words = _title_words(title)
    return len(words & q_tokens) / len(words) if words else 0.0


def _doc_rows(snap: Snapshot, doc_id: str | None) -> tuple[int, int]:
    if doc_id is None:
        return 0, len(snap.passages)
    rows = [i for i, p in enumerate(snap.passages) if p.doc_id == doc_id]
    return (rows[0], rows[-1] + 1) if rows else (0, 0)


def _dense(snap: Snapshot, qvec: np.ndarray, k: int, lo: int, hi: int) -> list[int]:
    query = qvec.reshape(1, -1).astype(np.float32)
    if (lo, hi) == (0, len(snap.passages)):
        _, ids = snap.dense.search(query, k)
    else:
        import faiss

        params = faiss.SearchParameters(sel=faiss.IDSelectorRange(lo, hi))  # type: ignore[call-arg]
        _, ids = snap.dense.search(query, k, params=params)
    return [int(i) for i in ids[0] if i >= 0]


def _lexical(snap: Snapshot, q_tokens: list[str], k: int, lo: int, hi: int) -> list[int]:
    if not q_tokens:
        return []
    if (lo, hi) == (0, len(snap.passages)):
        return snap.lexical.search(q_tokens, k)[0].tolist()
    scores = np.asarray(snap.lexical.retriever.get_scores(q_tokens))[lo:hi]
    return [lo + int(i) for i in np.argsort(-scores)[:k] if scores[i] > 0]


def _by_sentence(snap: Snapshot, qvec: np.ndarray, k: int, lo: int, hi: int) -> list[int]:
    """Passages in the order of their best sentence's cosine."""
    s_lo = snap.passages[lo].first_sentence
    last = snap.passages[hi - 1]
    sims = snap.sentence_vectors(slice(s_lo, last.first_sentence + last.n_sentences)) @ qvec
    top = np.argsort(-sims)[:SENTENCE_CANDIDATES]
    return list(dict.fromkeys(int(snap.sent_passage[s_lo + i]) for i in top))[:k]


def _rankings(
    snap: Snapshot, qvec: np.ndarray, q_tokens: list[str], lo: int, hi: int, sentences: bool
) -> tuple[list[int], list[int], list[int]]:
    """Passage rows by passage vector, by BM25, and by their best sentence, best first."""
    k = min(CANDIDATES, hi - lo)
    # Both searches release the GIL: BM25 runs on the other core while FAISS scans
    # (100,000 passages: p95 of the two 18 ms one after the other, 12 ms side by side).
    lexical = _lexical_pool().submit(_lexical, snap, q_tokens, k, lo, hi)
    dense = _dense(snap, qvec, k, lo, hi)
    by_sentence = _by_sentence(snap, qvec, k, lo, hi) if sentences else []
    return dense, lexical.result(), by_sentence


def retrieve(
    snap: Snapshot,
    qvec: np.ndarray,
    question: str,
    q_tokens: list[str],
    doc_id: str | None = None,
    weights: Weights = WEIGHTS,
) -> list[Candidate]:
    """Candidate passages, best first.

    Args:
        snap: The loaded index.
        qvec: The question's unit embedding.
        question: The question text (for named authors).
        q_tokens: Its BM25 terms (for BM25 and titles).
        doc_id: Only search this essay.
        weights: How the signals combine.
    """
    lo, hi = _doc_rows(snap, doc_id)
    if hi <= lo:
        return []
    found = _rankings(snap, qvec, q_tokens, lo, hi, sentences=weights.sentence > 0)
    rankings = zip(found, (weights.dense, weights.lexical, weights.sentence), strict=True)
    total = (weights.dense + weights.lexical + weights.sentence) or 1.0
    fused: dict[int, float] = {}
    for ranking, weight in rankings:
        for rank, row in enumerate(ranking):
            fused[row] = fused.get(row, 0.0) + weight * (RRF_K + 1) / (RRF_K + rank + 1)
    named = named_authors(snap, question)
    q_set = set(q_tokens)
    rows = list(fused)
    cosines = (snap.passage_vectors[rows] @ qvec).tolist() if rows else []
    out = []
    for row, cosine in zip(rows, cosines, strict=True):
        doc = snap.docs[snap.passages[row].doc_id]
        boost = weights.named * (doc.author in named) + weights.title * title_share(
            doc.title, q_set
        )
        out.append(Candidate(row, cosine, fused[row] / total, boost))
    return sorted(out, key=lambda c: -(c.fused + c.boost))
