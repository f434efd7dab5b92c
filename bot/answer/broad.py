"""Broad questions: "What's Thoreau's big idea?", "Summarize the Gettysburg Address",
"Where does Reagan stand on government?". They name no passage; what answers them is the
sentences that carry an essay's main point, and passage retrieval rarely finds those (the
question shares little with them but the author's name).

Three small logistic models, learned from the shared broad sets by ``train/fit_broad.py``
(each judged on libraries it never saw), read a question in three steps:

- ``asks``: is the question broad? (its vector, whether it names an author, and the words
  it is put in: "gist", "summarize", "stand on" are learned, not listed);
- ``essay``: which essay is it about? (how much of the title it uses, whether it names the
  author, how close the essay's sentences come to it, the essay's length);
- ``thesis``: which of that essay's sentences carry its main point? (where the sentence
  stands in the essay and its paragraph, how close it is to the essay's centre and to the
  question, its length, and its own vector: what a thesis sentence sounds like).

Every feature is computed here, by the code that serves, and the training script calls
these same functions; the answer is whole sentences of the essays, quoted verbatim.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.answer.question import Question
from bot.answer.results import SCORE_DIGITS, Quote
from bot.answer.retrieve import Retrieved, title_share
from bot.index.embed import paired_elsewhere
from bot.index.keypoints import authors_own, standalone
from bot.index.snapshot import Snapshot

#: Definition: the features of each model, in their column order ("vector" is the
#: question's or the sentence's embedding, one column per dimension).
ASKS_FEATURES = ("names_author", "vector", "words")
ESSAY_FEATURES = ("title_share", "names_its_author", "names_an_author", "best_cosine",
                  "top_cosines", "mean_cosine", "log_sentences")  # fmt: skip
THESIS_FEATURES = ("place", "place_squared", "first_tenth", "last_tenth", "first_paragraph",
                   "last_paragraph", "opens_paragraph", "closes_paragraph", "centre_cosine",
                   "log_words", "few_words", "asks", "log_sentences", "cosine", "cosine_rank",
                   "cosine_z", "vector")  # fmt: skip
#: Cost bound: candidate essays come from this many of the best retrieved passages (beside
#: the essays of the authors the question names and those whose title it uses).
ESSAY_POOL = 20
#: Cost bound: the most essays of one named author whose sentences are read.
AUTHOR_ESSAYS = 200
#: Judgment: the main points come from at most this many essays (the most likely ones):
#: an author's view often spans two; a third never helped on the broad sets.
ESSAYS_READ = 2
#: Definition: "the top cosines" of an essay: the mean of its best this many.
TOP_COSINES = 5
#: Definition: the share of the essay, at each end, that counts as its opening or close.
TENTH = 0.1
#: Definition: a sentence shorter than this many words (a salutation, a fragment).
FEW_WORDS = 8
#: Definition: a word of a question, as ``asks`` reads it (apostrophes kept: "what's").
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


@dataclass(frozen=True)
class Logistic:
    """A logistic model over standardised features: logit = ((x - mean) / scale) . coef + b."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def logits(self, rows: np.ndarray) -> np.ndarray:
        return ((rows - self.mean) / self.scale) @ self.coef + self.intercept

    def as_dict(self) -> dict[str, object]:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "coef": self.coef.tolist(), "intercept": self.intercept}  # fmt: skip


@dataclass(frozen=True)
class Broad:
    """The three models, the cut above which a question counts as broad (the logit of
    ``asks``; chosen by ``train/fit_broad.py`` by a rule fixed before fitting), and the
    words ``asks`` reads (those the training questions of several libraries use)."""

    asks: Logistic
    cut: float
    essay: Logistic
    thesis: Logistic
    words: tuple[str, ...]
    source: str = ""

    def is_broad(self, question: Question) -> bool:
        row = asks_features(question, self.words)[None, :]
        return float(self.asks.logits(row)[0]) > self.cut


def question_words(text: str) -> set[str]:
    """A question's words, lowercased, curly apostrophes straight."""
    return set(_WORD.findall(text.lower().replace("’", "'")))


def asks_features(question: Question, words: tuple[str, ...]) -> np.ndarray:
    """What says a question is broad: whether it names an author, its vector, and which
    of `words` it uses."""
    used = question_words(question.text)
    return np.concatenate([[float(bool(question.authors))], question.vector,
                           [float(w in used) for w in words]]).astype(np.float64)  # fmt: skip


def candidate_essays(snap: Snapshot, question: Question, found: Retrieved) -> list[str]:
    """The essays a broad question may be about: those of the authors it names, those
    whose title words it uses, and those of its best retrieved passages."""
    named = [e.doc_id for e in snap.docs.essays() if e.author in question.authors]
    terms = set(question.terms)
    titled = [d for d, words in snap.title_terms().items() if words & terms]
    retrieved = [snap.passages[c.row].doc_id for c in found.ranked()[:ESSAY_POOL]]
    return list(dict.fromkeys(named[:AUTHOR_ESSAYS] + titled + retrieved))


def essay_sentences(snap: Snapshot, doc_id: str) -> np.ndarray:
    """The sentence rows of an essay its author wrote (not reader comments, quoted
    speakers or another's introduction), or all of them when none are marked so."""
    rows = np.array(snap.passages.sentences_of(doc_id), dtype=np.int64)
    if not len(rows):
        return rows
    doc = snap.docs[doc_id]
    own = np.array([authors_own(doc, p) for p in snap.sent_para[rows].tolist()], dtype=bool)
    return rows[own] if own.any() else rows


def essay_features(snap: Snapshot, question: Question, doc_id: str, rows: np.ndarray) -> np.ndarray:
    """What says a broad question is about this essay (:data:`ESSAY_FEATURES`), read from
    its sentences (`rows`, :func:`essay_sentences`)."""
    cosines = np.sort(snap.sentence_vectors(rows) @ question.vector)[::-1] if len(rows) else \
        np.zeros(1)  # fmt: skip
    author = snap.docs.records[doc_id].meta.author
    return np.array([
        title_share(snap, doc_id, set(question.terms)), float(author in question.authors),
        float(bool(question.authors)), cosines[0], cosines[:TOP_COSINES].mean(),
        cosines.mean(), math.log(max(len(rows), 1)),
    ], dtype=np.float64)  # fmt: skip


def thesis_features(
    snap: Snapshot, rows: np.ndarray, texts: list[str], asked: np.ndarray
) -> np.ndarray:
    """What says each of an essay's sentences (its rows, :func:`essay_sentences`, and
    their texts) carries its main point (:data:`THESIS_FEATURES`), one row each, read
    beside the vector of what was asked."""
    n = len(rows)
    vectors = snap.sentence_vectors(rows)
    centre = vectors.mean(axis=0)
    centre /= max(float(np.linalg.norm(centre)), 1e-9)
    place = np.arange(n) / max(n - 1, 1)
    paras = snap.sent_para[rows]
    opens = np.r_[True, paras[1:] != paras[:-1]]
    closes = np.r_[paras[1:] != paras[:-1], True]
    words = np.array([len(t.split()) for t in texts])
    asks = np.array([t.rstrip().endswith("?") for t in texts])
    cosine = vectors @ asked
    rank = np.argsort(np.argsort(-cosine)) / max(n, 1)
    z = (cosine - cosine.mean()) / max(float(cosine.std()), 1e-9)
    size = np.full(n, math.log(max(n, 1)))
    columns = [place, place**2, place < TENTH, place > 1 - TENTH, paras == paras[0],
               paras == paras[-1], opens, closes, vectors @ centre, np.log1p(words),
               words < FEW_WORDS, asks, size, cosine, rank, z]  # fmt: skip
    return np.column_stack([np.column_stack(columns).astype(np.float64), vectors])


def names_essay(snap: Snapshot, question: Question, doc_id: str) -> bool:
    """Whether the question names this essay: its author, or every word of its title that
    tells titles apart."""
    author = snap.docs.records[doc_id].meta.author
    return author in question.authors or title_share(snap, doc_id, set(question.terms)) >= 1.0


def main_points(
    snap: Snapshot, question: Question, found: Retrieved, model: Broad
) -> tuple[list[Quote], bool]:
    """The sentences that carry the main point of the essays a broad question is about
    (at most :data:`ESSAYS_READ`, the likeliest), best first, each scored by how likely
    it carries it; and whether the question names the likeliest essay or its author (then
    only essays it names are read: it asks for their view, not the library's)."""
    essays = candidate_essays(snap, question, found)
    if not essays:
        return [], False
    rows = [essay_sentences(snap, d) for d in essays]
    features = [essay_features(snap, question, d, r) for d, r in zip(essays, rows, strict=True)]
    likely = model.essay.logits(np.vstack(features))
    order = np.argsort(-likely, kind="stable")
    named = names_essay(snap, question, essays[int(order[0])])
    if named:  # asked for an author's or an essay's view: theirs alone
        order = np.array([i for i in order.tolist() if names_essay(snap, question, essays[i])])
    quotes = [point for i in order[:ESSAYS_READ].tolist()
              for point in essay_points(snap, essays[i], rows[i], model, question.vector,
                                        float(likely[i]))]  # fmt: skip
    quotes.sort(key=lambda q: -q.score)
    return quotes, named


def essay_points(
    snap: Snapshot, doc_id: str, rows: np.ndarray, model: Broad, asked: np.ndarray, lift: float
) -> list[Quote]:
    """An essay's sentences (`rows`, :func:`essay_sentences`) that can stand alone as a
    point, each scored by how likely it carries the essay's main point, read beside the
    vector of what was `asked` (the thesis model's logit plus `lift`, as a probability),
    best first. Left out: questions, fragments, lead-ins
    (:func:`~bot.index.keypoints.standalone`)."""
    if not len(rows):
        return []
    texts = snap.sentence_texts(rows)
    value = model.thesis.logits(thesis_features(snap, rows, texts, asked)) + lift
    spans = snap.sent_span[rows]
    quotes = []
    for j, v in enumerate(value.tolist()):
        if standalone(texts[j]):
            start, end = int(spans[j][0]), int(spans[j][1])
            score = round(1 / (1 + math.exp(-v)), SCORE_DIGITS)
            quotes.append(Quote(doc_id, start, end, int(snap.sent_para[rows[j]]), score,
                                texts[j]))  # fmt: skip
    return sorted(quotes, key=lambda q: -q.score)


def sidecar(tuning: Path) -> Path:
    """Where a tuning artifact's broad-question models are: ``NAME.broad.json`` beside it."""
    return tuning.with_name(f"{tuning.name.removesuffix('.npz')}.broad.json")


def _logistic(data: dict[str, object], width: int, what: str) -> Logistic:
    arrays = [np.asarray(data[k], dtype=np.float64) for k in ("mean", "scale", "coef")]
    if any(a.shape != (width,) or not np.isfinite(a).all() for a in arrays):
        raise ValueError(f"{what}: expected {width} finite numbers per array")
    intercept = float(data["intercept"])  # type: ignore[arg-type]
    if not math.isfinite(intercept):
        raise ValueError(f"{what}: the intercept is not a finite number")
    return Logistic(arrays[0], arrays[1], arrays[2], intercept)


def read_broad(path: Path, tuning: Path | None) -> Broad | None:
    """The broad-question models in `path`, or None when there is no such file.

    Raises:
        ValueError: The file is malformed (other features, widths that disagree, a
            number that is not finite), or it was fitted for another delta than `tuning`.
    """
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    if paired_elsewhere(data, tuning):
        raise ValueError(f"{path.name} was fitted for another model tuning")
    words = tuple(str(w) for w in data["asks"]["words"])
    dimensions = len(data["thesis"]["coef"]) - (len(THESIS_FEATURES) - 1)
    models = []
    for key, names in (("asks", ASKS_FEATURES), ("essay", ESSAY_FEATURES),
                       ("thesis", THESIS_FEATURES)):  # fmt: skip
        if tuple(data[key]["features"]) != names:
            raise ValueError(f"{path.name}: the {key} model is over other features")
        width = len(names) - 1 + dimensions if "vector" in names else len(names)
        width += len(words) - 1 if "words" in names else 0
        models.append(_logistic(data[key], width, f"{path.name} {key}"))
    cut = float(data["cut"])
    if not math.isfinite(cut):
        raise ValueError(f"{path.name}: the cut is not a finite number")
    return Broad(models[0], cut, models[1], models[2], words, path.name)
