"""Learn to answer broad questions, leave-one-library-out: whether a question is broad,
which essay it is about, and which of its sentences carry the main point
(:mod:`bot.answer.broad`).

    python -m train.fit_broad [--allow-dirty]

Reads every shared library's three question sets with the shipped model (the engine's
own index of each, as ``bench/bench_quality.py`` keeps them) and computes every feature
with the serving code. Each rule is fixed before looking at any result:

1. **asks** (broad or not): a logistic regression, classes balanced, over
   :data:`~bot.answer.broad.ASKS_FEATURES`; every question of the sets (in scope and off
   topic) is an example, the broad sets' the positives. Its words are those that the
   answerable questions of at least :data:`WORD_LIBRARIES` training libraries use (a
   word readers of several libraries use says how they ask, not what a library is
   about). Its cut:
   the lowest at which the training libraries' other questions taken for broad (each
   scored by a model fitted without its own library) are at most one a library on
   average: what the ship rule allows a library to lose.
2. **essay**: a logistic regression over :data:`~bot.answer.broad.ESSAY_FEATURES` of
   each broad question's candidate essays, the essays its row names the positives.
3. **thesis**: a logistic regression over :data:`~bot.answer.broad.THESIS_FEATURES` of
   every sentence that can stand alone (``bot.index.keypoints.standalone``: what
   :func:`~bot.answer.broad.main_points` reads) of the essays each broad question names,
   the sentences holding one of its ``must_quote`` phrases the positives. Its L2
   strength (384 of its columns are the sentence's vector) is chosen from
   :data:`THESIS_C_GRID` by leave-one-library-out inside the training libraries: the one
   that most often puts a sentence holding a phrase among the top three of the named
   essays.

For each library it fits on the others and scores the one left out with
:func:`bot.answer.broad.main_points` (the serving code): broad questions answered
(hit@3), and other questions taken for broad. It writes each fold's
``bench/results/broad/<library>.json`` (for ``bench_quality.py --kinds --broad-folds``)
and, fitted on all, the shipped ``bot/index/trained/minilm-lora.broad.json`` with its
provenance.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from bench.common import BROAD_FOLDS, INDEXES, ROOT, index_dir
from bot.answer.broad import (
    ASKS_FEATURES,
    ESSAY_FEATURES,
    THESIS_FEATURES,
    Broad,
    Logistic,
    asks_features,
    candidate_essays,
    essay_features,
    essay_sentences,
    main_points,
    question_words,
    sidecar,
    thesis_features,
)
from bot.answer.engine import Engine
from bot.answer.inputs import clean_question
from bot.answer.question import Question
from bot.answer.retrieve import Retrieved, retrieve
from bot.answer.selection import select
from bot.frontends.evaluate import normalise, out_of_scope, read_questions
from bot.index.embed import Embedder, tuning_sha256
from bot.index.keypoints import standalone
from bot.settings import Settings
from train.data import available, data_hash, kind_files, library_folder, source
from train.lora_artifact import ARTIFACT

#: See rule 1.
WORD_LIBRARIES = 3
#: The thesis model's L2 strengths tried; the one kept is chosen inside the training libraries.
THESIS_C_GRID = (0.003, 0.01, 0.03, 0.1)


@dataclass
class Asked:
    """A broad question, read as the engine reads it."""

    item: dict[str, Any]
    question: Question
    found: Retrieved
    essays: list[str]
    essay_rows: np.ndarray  # essay features, one row per candidate essay
    thesis_rows: np.ndarray  # thesis features of the named essays' sentences
    thesis_labels: np.ndarray


@dataclass
class Library:
    name: str
    engine: Engine
    questions: list[Question]  # every question, every kind
    asks_labels: np.ndarray
    kinds: list[str]
    in_scope: np.ndarray  # of `questions`: answerable (off-topic questions are not)
    broad: list[Asked] = field(default_factory=list)


def _holds(texts: list[str], phrases: list[str]) -> np.ndarray:
    wanted = [normalise(p) for p in phrases if p.strip()]
    return np.array([any(p in normalise(t) for p in wanted) for t in texts], dtype=bool)


def _asked(engine: Engine, item: dict[str, Any], question: Question) -> Asked:
    snap = engine.snapshot()
    found = retrieve(snap, question)
    essays = candidate_essays(snap, question, found)
    named = [d for d in str(item["doc"]).split("|") if d in snap.docs]
    thesis, labels = [], []
    for doc_id in named:
        rows = essay_sentences(snap, doc_id)
        texts = snap.sentence_texts(rows)
        points = np.array([standalone(t) for t in texts], dtype=bool)  # what main_points reads
        thesis.append(thesis_features(snap, rows, texts, question.vector)[points])
        labels.append(_holds(texts, item["must_quote"])[points])
    essay = np.vstack([essay_features(snap, question, d, essay_sentences(snap, d))
                       for d in essays])  # fmt: skip
    return Asked(item, question, found, essays, essay, np.vstack(thesis),
                 np.concatenate(labels))  # fmt: skip


def read_library(name: str, embedder: Embedder) -> Library:
    """A library's questions of every kind, read with the engine's own code."""
    folder = library_folder(name)
    engine = Engine(Settings(seeds_dir=folder, index_dir=index_dir(folder)), embedder)
    engine.index()
    snap = engine.snapshot()
    rows, labels, kinds, scope, broad = [], [], [], [], []
    for kind, path in kind_files(name).items():
        for item in read_questions(path):
            question = engine.read_question(snap, clean_question(item["question"], 2000))
            rows.append(question)
            labels.append(kind == "broad")
            kinds.append(kind)
            scope.append(not out_of_scope(item))
            if kind == "broad":
                broad.append(_asked(engine, item, question))
    return Library(name, engine, rows, np.array(labels), kinds, np.array(scope), broad)


def _fit(rows: np.ndarray, labels: np.ndarray, c: float, balanced: bool = False) -> Logistic:
    mean, scale = rows.mean(axis=0), rows.std(axis=0) + 1e-9
    model = LogisticRegression(C=c, max_iter=5000, class_weight="balanced" if balanced else None)
    model.fit((rows - mean) / scale, labels)
    return Logistic(mean, scale, model.coef_[0].astype(np.float64), float(model.intercept_[0]))


def _vocabulary(libs: list[Library]) -> tuple[str, ...]:
    """The words of rule 1: used by answerable questions of at least
    :data:`WORD_LIBRARIES` of them (off-topic questions share the modern things no
    library mentions: "bitcoin", "smartphone")."""
    seen: dict[str, int] = {}
    for lib in libs:
        asked = [q for q, answerable in zip(lib.questions, lib.in_scope, strict=True) if answerable]
        for word in set().union(*(question_words(q.text) for q in asked)):
            seen[word] = seen.get(word, 0) + 1
    return tuple(sorted(w for w, n in seen.items() if n >= WORD_LIBRARIES))


def _asks_model(libs: list[Library]) -> tuple[Logistic, tuple[str, ...]]:
    words = _vocabulary(libs)
    rows = np.vstack([asks_features(q, words) for m in libs for q in m.questions])
    labels = np.concatenate([m.asks_labels for m in libs])
    return _fit(rows, labels, 1.0, balanced=True), words


def _fit_asks(libs: list[Library]) -> tuple[Logistic, float, tuple[str, ...]]:
    """The broad-or-not model on these libraries, its cut and words (rule 1)."""
    others = []
    for lib in libs:
        inner, words = _asks_model([m for m in libs if m is not lib])
        rows = np.vstack([asks_features(q, words) for q in lib.questions])
        others.append(inner.logits(rows[~lib.asks_labels]))
    scores = np.sort(np.concatenate(others))[::-1]
    cut = float(scores[len(libs)]) if len(scores) > len(libs) else float(scores[-1])
    model, words = _asks_model(libs)
    return model, cut, words


def _fit_thesis(asked: list[Asked], c: float) -> Logistic:
    return _fit(np.vstack([a.thesis_rows for a in asked]),
                np.concatenate([a.thesis_labels for a in asked]), c)  # fmt: skip


def _thesis_c(libs: list[Library]) -> float:
    """The thesis model's L2 strength (rule 3): of :data:`THESIS_C_GRID`, the one whose
    models, each fitted without one of these libraries, put a sentence holding a phrase
    among the top three of that library's named essays most often."""
    found = dict.fromkeys(THESIS_C_GRID, 0)
    for lib in libs:
        rest = [a for m in libs if m is not lib for a in m.broad]
        for c in THESIS_C_GRID:
            model = _fit_thesis(rest, c)
            for a in lib.broad:
                top = np.argsort(-model.logits(a.thesis_rows))[:3]
                found[c] += bool(a.thesis_labels[top].any())
    return max(THESIS_C_GRID, key=lambda c: (found[c], -c))


def fit(libs: list[Library]) -> tuple[Broad, float]:
    """All three models on these libraries, and the thesis model's L2 strength."""
    asks, cut, words = _fit_asks(libs)
    asked = [a for lib in libs for a in lib.broad]
    essay_labels = [np.array([d in str(a.item["doc"]).split("|") for d in a.essays]) for a in asked]
    essay = _fit(np.vstack([a.essay_rows for a in asked]), np.concatenate(essay_labels), 1.0)
    c = _thesis_c([lib for lib in libs if lib.broad])
    return Broad(asks, cut, essay, _fit_thesis(asked, c), words), c


def score(lib: Library, model: Broad) -> dict[str, Any]:
    """The left-out library's broad questions answered by the main points (hit@3), how
    many of them are taken for broad, and how many other questions are, per kind."""
    snap = lib.engine.snapshot()
    hits = flagged = 0
    for a in lib.broad:
        points, _ = main_points(snap, a.question, a.found, model)
        shown = select(points, 3)
        hits += bool(_holds([q.quote for q in shown], a.item["must_quote"]).any())
        flagged += model.is_broad(a.question)
    logits = model.asks.logits(np.vstack([asks_features(q, model.words) for q in lib.questions]))
    wrong: dict[str, int] = {}
    for kind, z, broad in zip(lib.kinds, logits.tolist(), lib.asks_labels.tolist(), strict=True):
        if not broad and z > model.cut:
            wrong[kind] = wrong.get(kind, 0) + 1
    return {"broad": len(lib.broad), "hit@3": hits, "taken_for_broad": flagged,
            "others_taken_for_broad": wrong}  # fmt: skip


def as_json(model: Broad) -> dict[str, Any]:
    return {
        "asks": {
            "features": list(ASKS_FEATURES),
            "words": list(model.words),
            **model.asks.as_dict(),
        },
        "cut": model.cut,
        "essay": {"features": list(ESSAY_FEATURES), **model.essay.as_dict()},
        "thesis": {"features": list(THESIS_FEATURES), **model.thesis.as_dict()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--allow-dirty", action="store_true")
    args = parser.parse_args()
    provenance = source(args.allow_dirty, ("scikit-learn",))
    embedder = Embedder(query_dir=INDEXES / "query-model")
    libs = [read_library(name, embedder) for name in available()]
    print("| library | broad hit@3 | taken for broad | others taken for broad | thesis C |")
    print("|---|---|---|---|---|")
    BROAD_FOLDS.mkdir(parents=True, exist_ok=True)
    for lib in [lib for lib in libs if lib.broad]:
        fold, c = fit([m for m in libs if m is not lib])
        r = score(lib, fold)
        (BROAD_FOLDS / f"{lib.name}.json").write_text(json.dumps(as_json(fold)), encoding="utf-8")
        print(f"| {lib.name} | {r['hit@3']}/{r['broad']} | {r['taken_for_broad']}/{r['broad']}"
              f" | {r['others_taken_for_broad']} | {c} |", flush=True)  # fmt: skip
    model, c = fit(libs)
    shipped = as_json(model)
    assert embedder.tuning is not None
    shipped["pairs_with"] = {"delta": ARTIFACT.name, "sha256": tuning_sha256(embedder.tuning)}
    shipped["provenance"] = {**provenance, "data_sha256": data_hash(available(), every_kind=True),
                             "libraries": available(), "thesis_c": c}  # fmt: skip
    sidecar(ARTIFACT).write_text(json.dumps(shipped, separators=(",", ":")) + "\n",
                                 encoding="utf-8")  # fmt: skip
    print(f"wrote {sidecar(ARTIFACT).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
