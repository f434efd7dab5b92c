"""What the engine ranks each question's passages and quotes by, as training data for
learning how to weigh it (``train/fit_ranking.py``).

    python -m train.rank_features [LIBRARY ...]

For every question of a shared library, under the model tuned *without* that library
(its leave-one-library-out fold, so that each library's signals look like those of a
library the model never saw), this records:

- every retrieval candidate's signals (``bot.answer.retrieve.SIGNALS``) and cosine, and
  whether it holds one of the question's answering phrases;
- every run of one to three sentences of each candidate that a quote may be, its features
  (``bot.answer.windows.WINDOW_FEATURES``), whether all it does is ask, and whether its
  quote (made to stand alone, as served) holds an answering phrase;
- the best quote of each of the first :data:`~bot.answer.windows.RERANK` passages (by the
  fold's fitted weights, as the engine ranks them), reread token by token: each question
  token's best match in it (:func:`bot.answer.late.token_matches`), from which the fit
  takes how much of the question each quote meets (to reorder) and the best few meet
  together (to decline);
- what a decline could be decided by (``bot.answer.scope.DECLINE_FEATURES``; ``matched``
  left for the fit to compute from the matches, under the weights it fits), with whether
  the question is off topic and whether it names something no essay mentions (for the
  hand-set rule it is compared with).

Writes ``bench/results/rank/<library>.npz`` (never committed: the data stays in
``../shared``).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bot.answer import late
from bot.answer.engine import Engine
from bot.answer.inputs import clean_question
from bot.answer.learned import sidecar
from bot.answer.question import Question
from bot.answer.retrieve import WEIGHTS, Retrieved, Weights, retrieve
from bot.answer.scope import decline_features, unknown_names
from bot.answer.windows import RERANK, passage_sentences, window_weights
from bot.frontends.evaluate import normalise, out_of_scope, read_questions
from train.data import FOLDS, ROOT, available, fold_engine, questions_file

OUT = ROOT / "bench" / "results" / "rank"


def _holds(text: str, phrases: list[str]) -> bool:
    folded = normalise(text)
    return any(p in folded for p in phrases)


def fold_weights(name: str) -> Weights:
    """The retrieval weights last fitted for a library's fold (the hand-set ones before
    the first fit): which passages' quotes are reread."""
    path = sidecar(FOLDS / f"{name}.npz")
    if not path.is_file():
        return WEIGHTS
    return replace(WEIGHTS, **json.loads(path.read_text(encoding="utf-8"))["weights"])


def best_of_each(passages: Sequence[int], values: Sequence[float]) -> dict[int, int]:
    """Each passage's best run by `values` (the first best on a tie, as the engine picks
    it), as its position among the runs: what is recorded here and what the fit
    simulates must choose alike."""
    best: dict[int, int] = {}
    for j, p in enumerate(passages):
        if p not in best or values[j] > values[best[p]]:
            best[p] = j
    return best


def _quote_of_each(out: dict[str, list[Any]]) -> dict[int, int]:
    """Each passage's best run by the hand-set quote weights (the engine's choice), as
    its row among the question's runs."""
    values = np.asarray(out["w_feats"]) @ np.array(window_weights(WEIGHTS))
    return best_of_each(out["w_pass"], values.tolist())


def reread(engine: Engine, question: Question, out: dict[str, list[Any]], weights: Weights,
           found: Retrieved) -> None:  # fmt: skip
    """The best quote of each of the first RERANK passages, read token by token, added to
    `out` (``l_w``: the quote's run, ``l_qlen``: the question's tokens, ``l_m``: each
    token's best match in the quote)."""
    snap = engine.snapshot()
    where = {row: i for i, row in enumerate(found.rows)}
    top = [where[c.row] for c in found.ranked(weights)[:RERANK]]
    chosen = _quote_of_each(out)
    runs = [chosen[i] for i in top if i in chosen]
    texts = []
    for j in runs:
        doc, start, end = out["w_span"][j]
        texts.append(snap.docs.text(snap.passages.doc_ids[doc])[start:end])
    matches = late.read(engine.embedder.token_vectors, question, texts) if texts else None
    out["l_w"] = runs
    out["l_qlen"] = [0 if matches is None else matches.shape[0]]
    out["l_m"] = [] if matches is None else matches.T.ravel().tolist()


def question_rows(engine: Engine, item: dict[str, Any], weights: Weights) -> dict[str, list[Any]]:
    """One question's candidates and quote runs, as rows of the arrays written."""
    snap = engine.snapshot()
    question = clean_question(item["question"], engine.settings.max_question_chars)
    read = engine.read_question(snap, question)
    found = retrieve(snap, read)
    rows, cosines, signals = found.rows, found.cosines, found.signals
    phrases = [normalise(p) for p in item.get("must_quote", []) if p.strip()]
    rarity = snap.lexical.rarity(set(read.terms))
    out: dict[str, list[Any]] = {k: [] for k in ("p_signals", "p_cos", "p_label", "w_pass",
                                                 "w_feats", "w_unanswered", "w_label",
                                                 "w_span")}  # fmt: skip
    for i, row in enumerate(rows):
        p = snap.passages[row]
        doc_text = snap.docs.text(p.doc_id)
        out["p_signals"].append(signals[i])
        out["p_cos"].append(float(cosines[i]))
        out["p_label"].append(_holds(doc_text[p.start : p.end], phrases))
        ps = passage_sentences(snap, row, read)
        for lo, hi, feats in ps.windows(rarity):
            first, last, unanswered = ps.complete(lo, hi)
            start = int(snap.sent_span[ps.rows[first]][0])
            end = int(snap.sent_span[ps.rows[last]][1])
            out["w_pass"].append(i)
            out["w_feats"].append(feats)
            out["w_unanswered"].append(unanswered)
            out["w_label"].append(_holds(doc_text[start:end], phrases))
            out["w_span"].append((snap.passages.essay_ordinals([row])[0], start, end))
    reread(engine, read, out, weights, found)
    out["decline"] = [decline_features(snap, read, cosines, matched=np.nan)]  # the fit's
    out["unknown"] = [bool(unknown_names(snap, question))]  # the hand-set rule's veto
    return out


def extract(name: str) -> Path:
    """Every question of one library, under its fold's model; returns the file written."""
    engine, weights = fold_engine(name), fold_weights(name)
    columns: dict[str, list[Any]] = {}
    offsets: dict[str, list[int]] = {"p": [0], "w": [0], "l": [0]}
    in_scope = []
    for item in read_questions(questions_file(name)):
        rows = question_rows(engine, item, weights)
        in_scope.append(not out_of_scope(item))
        for key, values in rows.items():
            columns.setdefault(key, []).extend(values)
        offsets["p"].append(offsets["p"][-1] + len(rows["p_cos"]))
        offsets["w"].append(offsets["w"][-1] + len(rows["w_label"]))
        offsets["l"].append(offsets["l"][-1] + len(rows["l_w"]))
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.npz"
    arrays = {key: np.asarray(values) for key, values in columns.items()}
    np.savez_compressed(path, in_scope=np.array(in_scope), p_offsets=np.array(offsets["p"]),
                        w_offsets=np.array(offsets["w"]), l_offsets=np.array(offsets["l"]),
                        **arrays)  # fmt: skip
    return path


def main() -> None:
    for name in sys.argv[1:] or available():
        t0 = time.perf_counter()
        path = extract(name)
        print(f"{name}: {path} in {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
