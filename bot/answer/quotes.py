"""Choosing quotes: the best verbatim 1-3 sentences of the retrieved passages, scored,
de-duplicated and attributed, or an honest decline.

Everything here is a pure function of a loaded :class:`~bot.index.snapshot.Snapshot` and a query
vector, and returns small frozen dataclasses, so rendering and attribution need no model.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

import numpy as np

from bot.answer import late
from bot.answer.late import QUOTES_READ, TokenReader
from bot.answer.learned import HAND_SET, Answering, Decline, Reorder
from bot.answer.retrieve import WEIGHTS, Candidate, Weights, passage_signals, rank
from bot.answer.scope import decline_features, unknown_names
from bot.index.lexical import tokenize
from bot.index.snapshot import Snapshot
from bot.ingest.model import Document, EssayMeta, Role

RERANK = 20  # fused passages examined for quotes
MAX_QUOTE_SENTENCES = 3
SHORT_SENTENCE_WORDS = 9
NEAR_DUPLICATE = 0.6  # token Jaccard above which two quotes say the same thing
DIVERSITY = 0.04  # score given up per excerpt already taken from the same essay
UNKNOWN_COMMENTER = "reader comment"
#: An excerpt is shown when its passage or best sentence is at least this much less similar
#: than the decline threshold: the threshold decides whether the library covers the
#: question at all; an answering sentence in older prose often scores well below it.
EXCERPT_MARGIN = 0.15
#: A question naming something no essay mentions is still answered when a passage is at
#: least this similar: another spelling ("Kiev" for the essays' "Kyiv", "Donbass") leaves
#: the rest of the question matching closely (0.65-0.68 on the seeds), while library2's
#: off-topic questions that name an unknown reach at most 0.52.
NAMED_BUT_COVERED = 0.60


#: What kind of answer a question's form asks for, and how to see it in a sentence.
_NUMBER_WORDS = (
    r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|"
    r"forty|fifty|sixty|hundreds?|thousands?|millions?|billions?|dozens?|half|percent)\b"
)
_FORMS = (
    (re.compile(r"\bhow (?:many|much|fast|far|long|old|often|large|big|high|few)\b|"
                r"\b(?:what|which) (?:number|percentage|proportion|share|sum|amount|figures?)\b|"
                r"\bpopulation figures\b", re.I),
     re.compile(_NUMBER_WORDS, re.I)),
    (re.compile(r"^\W*when\b|\b(?:what|which) (?:year|date|day|month|century|age)\b", re.I),
     re.compile(r"\b1\d{3}\b|\b20\d{2}\b|\b(?:January|February|March|April|May|June|July|"
                r"August|September|October|November|December|spring|summer|autumn|winter)\b")),
    (re.compile(r"^\W*(?:who|whom|where)\b|\b(?:which|what) (?:man|woman|person|people|group|"
                r"men|city|town|country|place|officer|author)\b", re.I),
     re.compile(r"(?<=[a-z,;:] )[A-Z][a-z]")),
)  # fmt: skip


def question_form(question: str) -> re.Pattern[str] | None:
    """What an answer to this question must hold, by its form: how many / how much -> a
    number; when -> a date; who / where -> a name. None for why, how and the rest."""
    for asks, holds in _FORMS:
        if asks.search(question):
            return holds
    return None


@dataclass(frozen=True)
class Excerpt:
    """A verbatim quote with everything needed to attribute it.

    ``quote == document.text[start:end]`` always holds. ``author`` is who wrote these words:
    the essay's author, someone the essay quotes (then ``quoted_by`` names the essay's
    author), or for a reader comment its writer if known, else "reader comment".
    """

    quote: str
    essay: EssayMeta
    author: str
    role: Role
    start: int
    end: int
    score: float
    paragraph: int
    note: str | None = None
    quoted_by: str | None = None

    @property
    def doc_id(self) -> str:
        """The essay's id (what ranking and de-duplicating quotes group by)."""
        return self.essay.doc_id

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form: the excerpt's fields and its essay's, flat (``author`` is who
        wrote the words, ``essay_author`` who wrote the essay)."""
        e = self.essay
        return {"quote": self.quote, "doc_id": e.doc_id, "title": e.title,
                "author": self.author, "date": e.date, "source": e.source, "role": self.role,
                "start": self.start, "end": self.end, "score": self.score,
                "paragraph": self.paragraph, "essay_author": e.author, "note": self.note,
                "quoted_by": self.quoted_by, "via": e.via, "url": e.url}  # fmt: skip


class Ranked(Protocol):
    """What ranking and de-duplicating quotes needs of one (an Excerpt or a Quote)."""

    @property
    def doc_id(self) -> str: ...
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...
    @property
    def score(self) -> float: ...
    @property
    def quote(self) -> str: ...


R = TypeVar("R", bound=Ranked)


@dataclass(frozen=True)
class Quote:
    """A scored quote before it is attributed: enough to rank, demote and de-duplicate.
    Attributing needs the essay's paragraphs, read only for the quotes an answer keeps
    (at 10,000 essays, reading them for every candidate cost 2-3 ms a question)."""

    doc_id: str
    start: int
    end: int
    paragraph_index: int
    score: float
    quote: str


def attribute(snap: Snapshot, q: Quote) -> Excerpt:
    """The excerpt for a quote: who wrote it, where and when."""
    return make_excerpt(snap.docs[q.doc_id], q.start, q.end, q.paragraph_index, q.score)


@dataclass(frozen=True)
class Answer:
    """The excerpts for a question, best first, or a decline."""

    question: str
    abstained: bool
    excerpts: tuple[Excerpt, ...]
    best_similarity: float = 0.0
    unknown_names: tuple[str, ...] = ()  # names in the question no essay mentions


def make_excerpt(
    doc: Document, start: int, end: int, paragraph_index: int, score: float
) -> Excerpt:
    """Build an excerpt for ``doc.text[start:end]``, attributed by its paragraph."""
    para = doc.paragraphs[paragraph_index]
    if para.role == Role.COMMENT:
        author = para.author or UNKNOWN_COMMENTER
    else:
        author = para.author or doc.meta.author or "unknown author"
    return Excerpt(
        quote=doc.text[start:end],
        essay=doc.meta,
        author=author,
        role=para.role,
        start=start,
        end=end,
        score=round(float(score), 4),
        paragraph=para.number,
        note=para.note,
        quoted_by=para.quoted_by,
    )


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


def _scan_windows(
    sims: np.ndarray,
    gram: np.ndarray,
    toks: list[frozenset[str]],
    para: list[int],
    rarity: dict[str, float],
    weights: Weights,
    holds: list[bool] | None = None,
) -> tuple[float, int, int]:
    """The best run of one to three consecutive sentences of one paragraph: its features
    (see :func:`window_features`) weighed by `weights`, the first best on a tie.

    Returns:
        The run's score and its first and last positions in the passage.
    """
    w = window_weights(weights)
    best = (-np.inf, 0, 0)
    for lo, hi, feats in window_features(sims, gram, toks, para, rarity, holds):
        score = sum(wi * f for wi, f in zip(w, feats, strict=True))
        if score > best[0]:
            best = (float(score), lo, hi)
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
        """The run made to stand alone (:func:`_complete_window`), and whether all it
        does is ask."""
        lo, hi = _complete_window(self.texts, self.para, lo, hi)
        return lo, hi, all(_ends_with(t, ("?",)) for t in self.texts[lo : hi + 1])


def passage_sentences(
    snap: Snapshot, pid: int, qvec: np.ndarray, form: re.Pattern[str] | None = None
) -> PassageSentences:
    """A passage's sentences, their vectors' cosines and terms (see :class:`PassageSentences`)."""
    p = snap.passages[pid]
    rows = np.arange(p.first_sentence, p.first_sentence + p.n_sentences)
    vecs = snap.sentence_vectors(rows)
    texts = snap.sentence_texts(rows)
    return PassageSentences(
        rows=rows,
        sims=vecs @ qvec,
        gram=vecs @ vecs.T,
        toks=[snap.sentence_tokens(int(r)) for r in rows],
        para=snap.sent_para[rows].tolist(),
        texts=texts,
        holds=[bool(form.search(t)) for t in texts] if form is not None else None,
    )


def _best_window(
    snap: Snapshot,
    pid: int,
    qvec: np.ndarray,
    rarity: dict[str, float],
    weights: Weights,
    form: re.Pattern[str] | None = None,
) -> tuple[int, int, float, float]:
    """The best quote inside one passage (see :func:`_scan_windows`), made to stand alone.

    Returns:
        First and last sentence rows, the run's score and its best sentence's cosine.
    """
    ps = passage_sentences(snap, pid, qvec, form)
    window, lo, hi = _scan_windows(ps.sims, ps.gram, ps.toks, ps.para, rarity, weights, ps.holds)
    lo, hi, unanswered = ps.complete(lo, hi)
    if unanswered:
        window -= weights.unanswered  # a quote that only asks answers nothing
    return int(ps.rows[lo]), int(ps.rows[hi]), window, float(ps.sims[lo : hi + 1].max())


def quote_tokens(text: str) -> set[str]:
    """Lower-cased words of a quote, for near-duplicate checks."""
    return set(re.findall(r"\w+", text.lower()))


def near_duplicate(ta: set[str], tb: set[str]) -> bool:
    """Two quotes' word sets say the same thing (one mostly inside the other, or similar)."""
    if not ta or not tb:
        return False
    shared = len(ta & tb)
    return shared / min(len(ta), len(tb)) >= 0.8 or shared / len(ta | tb) >= NEAR_DUPLICATE


def quotes(
    snap: Snapshot,
    qvec: np.ndarray,
    question: str,
    threshold: float,
    doc_id: str | None = None,
    rerank: int = RERANK,
    weights: Weights = WEIGHTS,
    margin: float = EXCERPT_MARGIN,
    decline: Decline | None = None,
    reorder: Reorder | None = None,
    reader: TokenReader | None = None,
) -> tuple[list[Quote], float]:
    """The best quote of each of the top candidate passages that is relevant enough.

    Declines (no excerpts) when `decline` says the library cannot answer the question, or,
    with no learned decline, when no passage is at least `threshold` similar to it;
    otherwise keeps the excerpts whose passage or best sentence is at least `threshold -
    margin` similar (summaries use no margin: a point must be on the topic itself).

    An excerpt's score weighs its quote's own score (see :func:`_best_window`), its
    passage's cosine and retrieval score, and the named-author and title boosts. A
    learned decline or reorder rereads the best quotes token by token with `reader`
    (:mod:`bot.answer.late`).

    Returns:
        Excerpts, best first, and the best similarity seen.

    Raises:
        ValueError: A learned decline or reorder with no `reader`.
    """
    q_tokens = tokenize(question)
    rows, cosines, signals = passage_signals(snap, qvec, question, q_tokens, doc_id)
    found = rank(rows, cosines, signals, weights)
    # Whether the library covers the question at all is judged on whole passages: a short
    # sentence can resemble an off-topic question by chance (measured on the sets).
    best_sim = max((c.cosine for c in found), default=0.0)
    if decline is None and best_sim < threshold:
        return [], best_sim
    scored = _scored(snap, qvec, question, q_tokens, found[:rerank], weights)
    if decline is not None or reorder is not None:
        if reader is None:
            raise ValueError("a learned decline or reorder reads quotes token by token")
        scored, meets = _reread(snap, question, scored, reader, reorder)
        if decline is not None and decline.declines(
            decline_features(snap, question, cosines, meets)
        ):
            return [], best_sim
    pool: list[Quote] = []
    for score, first, last, relevance in scored:
        if relevance >= threshold - margin:
            pool.append(_quote(snap, first, last, score))
    return pool, best_sim


Scored = tuple[float, int, int, float]  # score, first and last sentence rows, relevance


def _scored(
    snap: Snapshot,
    qvec: np.ndarray,
    question: str,
    q_tokens: list[str],
    found: list[Candidate],
    weights: Weights,
) -> list[Scored]:
    """The best quote of each passage (:func:`_best_window`), scored, best first."""
    rarity = snap.lexical.rarity(set(q_tokens))
    form = question_form(question)
    scored = []
    for cand in found:
        first, last, window, sent_sim = _best_window(snap, cand.row, qvec, rarity, weights, form)
        score = weights.window * window + weights.passage * cand.cosine + weights.fused * cand.fused
        scored.append((score, first, last, max(sent_sim, cand.cosine)))
    return sorted(scored, key=lambda t: -t[0])


def _quote(snap: Snapshot, first: int, last: int, score: float) -> Quote:
    """The quote of sentence rows `first` to `last` (one essay's)."""
    doc_id = snap.sent_doc[first]
    start, end = int(snap.sent_span[first][0]), int(snap.sent_span[last][1])
    text = snap.docs.text(doc_id)[start:end]
    return Quote(doc_id, start, end, int(snap.sent_para[first]), round(float(score), 4), text)


def _reread(
    snap: Snapshot,
    question: str,
    scored: list[Scored],
    reader: TokenReader,
    reorder: Reorder | None,
) -> tuple[list[Scored], float]:
    """The best :data:`~bot.answer.late.QUOTES_READ` quotes (`scored` is best first)
    reread token by token: reordered by `reorder` if given (keeping their scores, in the
    new order), and how much of the question they meet together."""
    head = scored[:QUOTES_READ]
    if not head:
        return scored, 0.0
    texts = [_quote(snap, first, last, score).quote for score, first, last, _ in head]
    matches = late.read(reader, question, texts)
    if reorder is not None:
        order = reorder.order([t[0] for t in head], late.match(matches))
        head = [(head[k][0], *head[i][1:]) for k, i in enumerate(order)]
    return head + scored[QUOTES_READ:], late.matched(matches)


def select(
    pool: list[R],
    k: int,
    per_group: int | None = None,
    group: Callable[[R], str] = lambda e: e.doc_id,
    penalty: float = DIVERSITY,
) -> list[R]:
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
    chosen: list[R] = []
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
    answering: Answering = HAND_SET,
    doc_id: str | None = None,
    demote: Callable[[Ranked], float] | None = None,
    reader: TokenReader | None = None,
) -> Answer:
    """Find the best verbatim excerpts for a question, or decline.

    Args:
        snap: The loaded index.
        qvec: The question's unit embedding.
        question: The question text (for lexical matching).
        k: How many excerpts at most.
        answering: How to rank and when to decline (learned for a tuned model; see
            :mod:`bot.answer.learned`).
        doc_id: Only search this essay.
        demote: How much to lower each excerpt (the community's feedback); the quotes
            never change, only their order.
        reader: Gives texts' token vectors (the model's), for an `answering` that rereads
            the best quotes (:mod:`bot.answer.late`).

    Returns:
        The answer: declined when the library cannot answer (the learned decision), or,
        with no learned decision, when nothing is similar enough or the question names
        someone or something no essay mentions (see :mod:`bot.answer.scope`) and no
        passage is as close as :data:`NAMED_BUT_COVERED`.
    """
    pool, best_sim = quotes(snap, qvec, question, answering.threshold, doc_id,
                            weights=answering.weights, decline=answering.decline,
                            reorder=answering.reorder, reader=reader)  # fmt: skip
    unknown = unknown_names(snap, question)
    if answering.decline is None and unknown and best_sim < NAMED_BUT_COVERED:
        return Answer(question, True, (), round(best_sim, 4), unknown)
    if not pool:  # with a learned decision, say which names no essay mentions
        said = unknown if answering.decline is not None else ()
        return Answer(question, True, (), round(best_sim, 4), said)
    if demote is not None:
        pool = sorted((replace(e, score=round(e.score - demote(e), 4)) for e in pool),
                      key=lambda e: -e.score)  # fmt: skip
    chosen = tuple(attribute(snap, q) for q in select(pool, k))
    return Answer(question, not chosen, chosen, round(best_sim, 4))


def context(snap: Snapshot, excerpt: Excerpt, before: int = 2, after: int = 2) -> Excerpt:
    """The excerpt widened by a few sentences of the same paragraph block.

    Returns:
        A new excerpt (still verbatim) covering the surrounding sentences.
    """
    doc = snap.docs[excerpt.doc_id]
    lo, hi = snap.passages.of(excerpt.doc_id)
    if hi <= lo:
        return excerpt
    last = snap.passages[hi - 1]
    rows = list(range(snap.passages[lo].first_sentence, last.first_sentence + last.n_sentences))
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
