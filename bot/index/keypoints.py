"""Key sentences of an essay, chosen at index time (embedding LexRank + MMR).

Centrality over the essay's own sentence embeddings finds the main line of argument; MMR
keeps two points from saying the same thing (an essay that repeats its opening, or lists
the same options twice, gets each idea once). Only the essay author's own sentences count:
reader comments, quoted speakers and a reposting blog's introduction never enter.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from bot.index.chunks import DocChunks
from bot.ingest.documents import COMMENT, Document

SUMMARY_VERSION = "s3"
MAX_POINTS = 7
DAMPING = 0.85
MMR_LAMBDA = 0.7
MIN_WORDS = 8
NEAR_SAME = 0.85  # cosine above which two sentences say the same thing
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


_WHOLE = re.compile(r"^[\"“‘'(\[]*[A-Z0-9].*[.!?…][\"”’')\]]*$", re.S)


def _standalone(text: str) -> bool:
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


def _authored(doc: Document, paragraph: int) -> bool:
    """Words of the essay's author (not a comment, a quoted speaker or another's intro)."""
    para = doc.paragraphs[paragraph]
    return para.role != COMMENT and para.quoted_by is None and para.author == doc.author


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


def essay_summary_points(chunks: DocChunks, n_points: int = MAX_POINTS) -> list[dict[str, Any]]:
    """Choose an essay's key sentences (index time).

    Returns:
        Up to `n_points` points in essay order: {"start", "end", "paragraph", "score",
        "rank"}; a reader takes the first N by "rank" for a shorter summary.
    """
    doc = chunks.doc
    vectors: list[np.ndarray] = []
    rows: list[int] = []
    for passage, vecs in zip(chunks.passages, chunks.sentence_vectors, strict=True):
        for i, sent_index in enumerate(passage.sentences):
            vectors.append(vecs[i])
            rows.append(sent_index)
    sentences = chunks.sentences
    authored = [j for j, r in enumerate(rows) if _authored(doc, sentences[r].paragraph)]
    if not authored:
        authored = list(range(len(rows)))
    usable = [
        j
        for j in authored
        if _standalone(doc.text[sentences[rows[j]].start : sentences[rows[j]].end])
    ]
    if not usable:
        usable = list(range(len(rows)))
    if not usable:
        return []
    mat = np.vstack([vectors[j] for j in usable])
    sim = mat @ mat.T
    centrality = _pagerank(sim)
    centrality = centrality / centrality.max()
    order = {j: i for i, j in enumerate(authored)}
    edge = max(1, round(EDGE * len(authored)))
    for i, j in enumerate(usable):
        if order[j] < edge or order[j] >= len(authored) - edge:
            centrality[i] += POSITION_BONUS
    chosen: list[int] = []
    while len(chosen) < min(n_points, len(usable)):
        best, best_score = -1, -np.inf
        for j in range(len(usable)):
            if j in chosen:
                continue
            redundancy = max((float(sim[j, c]) for c in chosen), default=0.0)
            if redundancy >= NEAR_SAME:
                continue
            score = MMR_LAMBDA * centrality[j] - (1 - MMR_LAMBDA) * redundancy
            if score > best_score:
                best, best_score = j, score
        if best < 0:
            break
        chosen.append(best)
    points = []
    for rank, j in enumerate(chosen):
        s = sentences[rows[usable[j]]]
        points.append(
            {"start": s.start, "end": s.end, "paragraph": s.paragraph,
             "score": round(float(centrality[j]), 4), "rank": rank}
        )  # fmt: skip
    return sorted(points, key=lambda p: p["start"])
