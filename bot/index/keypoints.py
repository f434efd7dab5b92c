"""Key sentences of an essay, chosen at index time (embedding LexRank + MMR).

Centrality over the essay's own sentence embeddings finds the main line of argument; MMR
keeps two points from saying the same thing (an essay that repeats its opening, or lists
the same options twice, gets each idea once). Only the essay author's own sentences count:
reader comments, quoted speakers and a reposting blog's introduction never enter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.index.chunks import DocChunks
from bot.ingest.model import Document, Role

SUMMARY_VERSION = "s4"
MAX_POINTS = 7
DAMPING = 0.85
MMR_LAMBDA = 0.7
MIN_WORDS = 8
NEAR_SAME = 0.85  # cosine above which two sentences say the same thing
#: The most units compared with each other at once (a 2,048 x 2,048 matrix: 32 MB).
BLOCK = 2048
#: Essays state their thesis at the start and restate it at the end: sentences in the first
#: and last tenth of the author's text get this much extra score (centrality is 0..1).
POSITION_BONUS = 0.25
EDGE = 0.1
#: A short sentence opening with one of these leans on the one before it ("Unless ...",
#: "It has ...") and cannot stand alone as a point.
DEPENDENT = frozenset(
    "it this that these those he she they his her their its unless but and or so yet"
    " also then thus therefore a".split()
)
STANDALONE_WORDS = 14


#: A lead-in ending in ":" is completed by up to this many following sentences.
LIST_ITEMS = 3
#: Sentences that state a conclusion ("Therefore ...", "The fact is ...") carry the thesis.
_CONCLUSION = re.compile(
    r"^[\"“‘'(]*(therefore|thus|hence|in short|in sum|in conclusion|the fact is|the point is)\b",
    re.I,
)
CONCLUSION_BONUS = 0.15
_WHOLE_START = re.compile(r"^[\"“‘'(\[]*[A-Z0-9]")
_WHOLE = re.compile(r"^[\"“‘'(\[]*[A-Z0-9].*[.!?…][\"”’')\]]*$", re.S)


def standalone(text: str) -> bool:
    """A whole sentence that makes sense on its own: it starts like a sentence and ends
    like one (not a piece of an over-long sentence), is not a question or a lead-in, and
    does not lean on the sentence before it."""
    words = text.split()
    if len(words) < MIN_WORDS or text.rstrip().endswith((":", "?")):
        return False
    if not _WHOLE.match(text.strip()):
        return False
    first = words[0].strip("“\"‘'(").lower().rstrip(",")
    return not (first in DEPENDENT and len(words) < STANDALONE_WORDS)


def authors_own(doc: Document, paragraph: int) -> bool:
    """Words of the essay's author (not a comment, a quoted speaker or another's intro)."""
    para = doc.paragraphs[paragraph]
    return para.role != Role.COMMENT and para.quoted_by is None and para.author == doc.meta.author


def _pagerank(sim: np.ndarray) -> np.ndarray:
    weights = np.clip(sim, 0.0, None)
    np.fill_diagonal(weights, 0.0)
    sums = weights.sum(axis=1, keepdims=True)
    sums[sums == 0] = 1.0
    transition = weights / sums
    n = len(sim)
    rank = np.full(n, 1.0 / n)
    for _ in range(100):
        new = (1 - DAMPING) / n + DAMPING * transition.T @ rank
        if np.abs(new - rank).sum() < 1e-8:
            break
        rank = new
    return rank


@dataclass(frozen=True)
class _Unit:
    """A candidate point: one sentence, or a lead-in ("...three options:") with the
    sentences that complete it, as indices into the essay's sentence list."""

    first: int
    last: int
    vector: np.ndarray
    order: int  # position among the author's sentences
    bonus: float


def _units(chunks: DocChunks) -> tuple[list[_Unit], int]:
    """The author's candidate points, and how many sentences the author wrote."""
    doc, sentences = chunks.doc, chunks.sentences
    vectors: dict[int, np.ndarray] = {}
    for passage, vecs in zip(chunks.passages, chunks.sentence_vectors, strict=True):
        vectors.update(zip(passage.sentences, vecs, strict=True))
    authored = [i for i in sorted(vectors) if authors_own(doc, sentences[i].paragraph)]
    authored = authored or sorted(vectors)
    texts = {i: doc.text[sentences[i].start : sentences[i].end] for i in authored}
    block = {i: doc.paragraphs[sentences[i].paragraph].block for i in authored}
    units = []
    for order, i in enumerate(authored):
        text = texts[i].strip()
        last = i
        if text.endswith(":") and _WHOLE_START.match(text):  # a lead-in takes its list
            follow = authored[order + 1 : order + 1 + LIST_ITEMS]
            last = max((j for j in follow if block[j] == block[i]), default=i)
        elif not standalone(text):
            continue
        span = authored[order : order + 1 + LIST_ITEMS]  # a lead-in's list is within
        mean = np.sum([vectors[j] for j in span if j <= last], axis=0)
        bonus = CONCLUSION_BONUS if _CONCLUSION.match(text) else 0.0
        units.append(_Unit(i, last, mean / np.linalg.norm(mean), order, bonus))
    return units, len(authored)


def _centrality(mat: np.ndarray) -> np.ndarray:
    """LexRank: PageRank over the units' similarities, in blocks of consecutive units of
    at most :data:`BLOCK` (the essay's sections, for a book-length text), so memory stays
    bounded (a 50,000-sentence essay would need a 10 GB matrix whole). Each block's ranks
    are scaled by its share of the units, so blocks compare; an essay of one block gets
    exactly LexRank."""
    n = len(mat)
    rank = np.empty(n)
    for lo in range(0, n, BLOCK):
        block = mat[lo : lo + BLOCK]
        rank[lo : lo + BLOCK] = _pagerank(block @ block.T) * (len(block) / n)
    return rank


def _choose(mat: np.ndarray, centrality: np.ndarray, n_points: int) -> list[int]:
    """MMR: the most central units, none saying what a chosen one already says (each
    unit's closeness to the chosen ones kept as it goes: memory linear in the units)."""
    chosen: list[int] = []
    redundancy = np.zeros(len(mat))  # with none chosen yet; then the closest chosen
    while len(chosen) < min(n_points, len(mat)):
        score = MMR_LAMBDA * centrality - (1 - MMR_LAMBDA) * redundancy
        score[redundancy >= NEAR_SAME] = -np.inf
        score[chosen] = -np.inf
        best = int(np.argmax(score))
        if not np.isfinite(score[best]):
            break
        closeness = (mat @ mat[best]).astype(np.float64)
        redundancy = closeness if not chosen else np.maximum(redundancy, closeness)
        chosen.append(best)
    return chosen


def essay_summary_points(chunks: DocChunks, n_points: int = MAX_POINTS) -> list[dict[str, Any]]:
    """Choose an essay's key points (index time): whole sentences of its author, a
    lead-in always with what it leads to.

    Returns:
        Up to `n_points` points in essay order: {"start", "end", "paragraph", "score",
        "rank"}; a reader takes the first N by "rank" for a shorter summary.
    """
    units, n_authored = _units(chunks)
    if not units:
        return []
    mat = np.vstack([u.vector for u in units])
    centrality = _centrality(mat)
    centrality = centrality / centrality.max()
    edge = max(1, round(EDGE * n_authored))
    for k, u in enumerate(units):
        at_edge = u.order < edge or u.order >= n_authored - edge
        centrality[k] += POSITION_BONUS * at_edge + u.bonus
    sentences = chunks.sentences
    points = []
    for rank, k in enumerate(_choose(mat, centrality, n_points)):
        first, last = sentences[units[k].first], sentences[units[k].last]
        points.append(
            {"start": first.start, "end": last.end, "paragraph": first.paragraph,
             "score": round(float(centrality[k]), 4), "rank": rank}
        )  # fmt: skip
    return sorted(points, key=lambda p: p["start"])
