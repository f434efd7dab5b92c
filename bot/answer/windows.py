"""Choosing the quote inside each passage: the best run of one to three consecutive
sentences of one paragraph, scored by what it holds of the question, made to stand alone.

Pure functions of a loaded :class:`~bot.index.snapshot.Snapshot` and a
:class:`~bot.answer.question.Question`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from bot.answer.question import Question
from bot.answer.results import SCORE_DIGITS, Excerpt, Quote, make_excerpt
from bot.answer.retrieve import Candidate, Weights
from bot.index.snapshot import Snapshot

#: Cost bound: the best passages by retrieval whose quotes are examined.
RERANK = 20
#: Judgment: the longest quote, in sentences (a quote is read in a chat message).
MAX_QUOTE_SENTENCES = 3
#: Judgment: a run of fewer words takes a neighbouring sentence (a fragment answers nothing).
SHORT_SENTENCE_WORDS = 9
#: Judgment: sentences of the same block shown either side of an excerpt for its context.
CONTEXT = 2


def _word_count(text: str) -> int:
    return len(text.split())


#: What a run of sentences is scored by, in the order of :func:`window_features`'s values
#: and of the :class:`~bot.answer.retrieve.Weights` fields that weigh them.
WINDOW_FEATURES = ("top", "together", "coverage", "extra_sentence", "form")


def window_features(
    sims: np.ndarray,
    gram: np.ndarray,
    toks: list[frozenset[str]],
    para: list[int],
    rarity: dict[str, float],
    holds: list[bool] | None = None,
) -> list[tuple[int, int, tuple[float, ...]]]:
    """Every run of one to three consecutive sentences of one paragraph, with what it is
    scored by (see :data:`WINDOW_FEATURES`): its best sentence's cosine, the cosine of its
    sentences taken together (their mean vector), the share of the question's terms it
    contains (each weighed by its rarity: "Atlanta" says more than "city"), its sentences
    beyond the first (a cost), and whether it holds what the question's form asks for.

    Args:
        sims: Each sentence's cosine with the question.
        gram: The sentences' vectors' dot products with each other.
        toks: Each sentence's BM25 terms.
        para: Each sentence's paragraph.
        rarity: The question's BM25 terms, each with its rarity in the library (see
            :meth:`~bot.index.lexical.LexicalIndex.rarity`).
        holds: Whether each sentence holds what the question's form asks for (a
            number for "how many"; see :func:`question_form`), if it asks for one.

    Returns:
        Each run's first and last positions in the passage and its features.
    """
    out: list[tuple[int, int, tuple[float, ...]]] = []
    holds = holds or [False] * len(sims)
    # Python floats, not numpy slices: a passage has a handful of sentences, and numpy's
    # per-call cost on arrays that small made this scan 1.3 ms a question at 10,000 essays.
    cos, dots = sims.tolist(), gram.tolist()
    q_tokens = set(rarity)
    n_terms = sum(rarity.values()) or 1.0
    for lo in range(len(cos)):
        covered: set[str] = set()
        total = norm2 = 0.0
        top = -math.inf
        held = False
        for hi in range(lo, min(len(cos), lo + MAX_QUOTE_SENTENCES)):
            if para[hi] != para[lo]:
                break
            covered |= toks[hi] & q_tokens
            total += cos[hi]
            norm2 += 2.0 * sum(dots[hi][lo:hi]) + dots[hi][hi]  # the run's mean vector
            top = max(top, cos[hi])
            held = held or holds[hi]
            together = total / math.sqrt(max(norm2, 1e-9))
            coverage = sum(rarity[t] for t in covered) / n_terms
            out.append((lo, hi, (top, together, coverage, float(hi - lo), float(held))))
    return out


def window_weights(weights: Weights) -> list[float]:
    """How a run's features (:data:`WINDOW_FEATURES`, in order) are weighed in its score:
    each by its weight, the sentences beyond the first as a cost."""
    w = [getattr(weights, name) for name in WINDOW_FEATURES]
    w[WINDOW_FEATURES.index("extra_sentence")] *= -1.0
    return w


def best_run(
    runs: list[tuple[int, int, tuple[float, ...]]], weights: Weights
) -> tuple[float, int, int]:
    """The best of a passage's runs (:func:`window_features`), their features weighed by
    `weights`, the first best on a tie.

    Returns:
        The run's score and its first and last positions in the passage.
    """
    w = window_weights(weights)
    best = (-np.inf, 0, 0)
    for lo, hi, feats in runs:
        score = sum(wi * f for wi, f in zip(w, feats, strict=True))
        if score > best[0]:
            best = (float(score), lo, hi)
    return best


def _ends_with(text: str, marks: tuple[str, ...]) -> bool:
    return text.rstrip("\"”’') ").endswith(marks)


def complete_window(texts: list[str], para: list[int], lo: int, hi: int) -> tuple[int, int]:
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


@dataclass(frozen=True)
class PassageSentences:
    """One passage's sentences as quotes are chosen from them."""

    rows: np.ndarray  # sentence rows in the index
    sims: np.ndarray  # each one's cosine with the question
    gram: np.ndarray  # their vectors' dot products with each other
    toks: list[frozenset[str]]  # each one's BM25 terms
    para: list[int]  # each one's paragraph
    texts: list[str]
    holds: list[bool] | None  # each holds what the question's form asks for (if any)

    def windows(self, rarity: dict[str, float]) -> list[tuple[int, int, tuple[float, ...]]]:
        """Every run of sentences a quote may be, with its features (:func:`window_features`)."""
        return window_features(self.sims, self.gram, self.toks, self.para, rarity, self.holds)

    def complete(self, lo: int, hi: int) -> tuple[int, int, bool]:
        """The run made to stand alone (:func:`complete_window`), and whether all it
        does is ask."""
        lo, hi = complete_window(self.texts, self.para, lo, hi)
        return lo, hi, all(_ends_with(t, ("?",)) for t in self.texts[lo : hi + 1])


def passage_sentences(snap: Snapshot, pid: int, question: Question) -> PassageSentences:
    """A passage's sentences, their vectors' cosines and terms (see :class:`PassageSentences`)."""
    p = snap.passages[pid]
    rows = np.arange(p.first_sentence, p.first_sentence + p.n_sentences)
    vecs = snap.sentence_vectors(rows)
    texts = snap.sentence_texts(rows)
    return PassageSentences(
        rows=rows,
        sims=vecs @ question.vector,
        gram=vecs @ vecs.T,
        toks=[snap.sentence_tokens(int(r)) for r in rows],
        para=snap.sent_para[rows].tolist(),
        texts=texts,
        holds=None if question.form is None else [bool(question.form.search(t)) for t in texts],
    )


class Scored(NamedTuple):
    """A passage's best quote, scored, before its text is sliced."""

    score: float  # the quote's own score weighed with its passage's (see best_quotes)
    first: int  # its first and last sentence rows
    last: int
    relevance: float  # the higher of its passage's and its best sentence's cosines


def best_window(
    snap: Snapshot, pid: int, question: Question, rarity: dict[str, float], weights: Weights
) -> tuple[int, int, float, float]:
    """The best quote inside one passage (see :func:`best_run`), made to stand alone.

    Returns:
        First and last sentence rows, the run's score and its best sentence's cosine.
    """
    ps = passage_sentences(snap, pid, question)
    window, lo, hi = best_run(ps.windows(rarity), weights)
    lo, hi, unanswered = ps.complete(lo, hi)
    if unanswered:
        window -= weights.unanswered  # a quote that only asks answers nothing
    return int(ps.rows[lo]), int(ps.rows[hi]), window, float(ps.sims[lo : hi + 1].max())


def best_quotes(
    snap: Snapshot, question: Question, found: list[Candidate], weights: Weights
) -> list[Scored]:
    """The best quote of each candidate passage (:func:`best_window`), scored by its own
    score, its passage's cosine and its retrieval score; best first."""
    rarity = snap.lexical.rarity(set(question.terms))
    scored = []
    for cand in found:
        first, last, window, sent_sim = best_window(snap, cand.row, question, rarity, weights)
        score = weights.window * window + weights.passage * cand.cosine + weights.fused * cand.fused
        scored.append(Scored(score, first, last, max(sent_sim, cand.cosine)))
    return sorted(scored, key=lambda t: -t[0])


def quote_of(snap: Snapshot, scored: Scored) -> Quote:
    """A scored quote's text and place (sentence rows of one essay)."""
    first, last = scored.first, scored.last
    doc_id = snap.sent_doc[first]
    start, end = int(snap.sent_span[first][0]), int(snap.sent_span[last][1])
    text = snap.docs.text(doc_id)[start:end]
    score = round(float(scored.score), SCORE_DIGITS)
    return Quote(doc_id, start, end, int(snap.sent_para[first]), score, text)


def context(
    snap: Snapshot, excerpt: Excerpt, before: int = CONTEXT, after: int = CONTEXT
) -> Excerpt:
    """The excerpt widened by a few sentences of the same paragraph block.

    Returns:
        A new excerpt (still verbatim) covering the surrounding sentences.
    """
    doc = snap.docs[excerpt.doc_id]
    rows = snap.passages.sentences_of(excerpt.doc_id)
    if not rows:
        return excerpt
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
