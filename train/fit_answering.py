"""Learn how a tuned model answers, leave-one-library-out: the retrieval weights, the cosine
excerpts are measured against, how the best quotes are reordered once reread token by
token, and the decision to decline.

    python -m train.fit_answering [--quotes]

Reads ``bench/results/rank/*.npz`` (``train/rank_features.py``: every library's signals
under the model tuned *without* it, so that each looks like a library the model never
saw). For each library it fits on the *other* libraries only, then scores the one left
out; finally it fits on all of them for the shipped model. Every choice is made by a rule
fixed before looking at any result:

1. **Retrieval weights** (``bot.answer.retrieve.SIGNALS``): a softmax over each question's
   candidates, the passages holding an answering phrase its target, with an L2 penalty
   chosen from :data:`L2_GRID` by leave-one-library-out loss *inside* the training
   libraries. How a quote is chosen inside a passage keeps the hand-set weights: learned
   ones chose longer quotes (see ``--quotes``).
2. **The reorder** (:class:`bot.answer.learned.Reorder`): a softmax over each question's
   reread quotes (:data:`bot.answer.late.QUOTES_READ`, the best by score), the ones
   holding an answering phrase its target, over their score and how much of the question
   each meets token by token (as is and standardised among them), L2 1e-3.
3. **The excerpt threshold**: the 1st percentile of the training libraries' in-scope
   questions' best passage cosine.
4. **The decline**: a logistic regression over ``bot.answer.scope.DECLINE_FEATURES``
   (in scope against off topic), declining below the 1st percentile of the training
   libraries' in-scope questions' scores: about 1% of answerable questions declined,
   the goal being none, with names no essay mentions as evidence rather than a veto.

Writes each fold's ``bench/results/lora/<library>.answering.json`` (beside its model
delta, for ``bench/bench_quality.py --lolo``) and the shipped
``bot/index/trained/minilm-lora.answering.json`` with its provenance. ``--quotes`` also
reports learned quote weights, held to the hand-set quote length (not shipped).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize
from sklearn.linear_model import LogisticRegression

from bot.answer import late
from bot.answer.late import QUOTES_READ
from bot.answer.learned import Reorder, sidecar, standardised
from bot.answer.retrieve import SIGNALS, WEIGHTS
from bot.answer.scope import DECLINE_FEATURES
from bot.answer.selection import DIVERSITY
from bot.answer.windows import RERANK, WINDOW_FEATURES, window_weights
from bot.index.embed import tuning_sha256
from train.data import FOLDS, available, data_hash, source
from train.lora_artifact import ARTIFACT
from train.rank_features import OUT, best_of_each

L2_GRID = (1e-1, 1e-2, 1e-3, 1e-4)
QUANTILE = 0.01
QUOTE_TERMS = (*WINDOW_FEATURES, "unanswered", "passage", "fused")


@dataclass
class Question:
    """One question's recorded candidates, quote runs and quotes reread token by token."""

    p_signals: np.ndarray
    p_cos: np.ndarray
    p_label: np.ndarray
    w_pass: np.ndarray
    w_feats: np.ndarray
    w_unanswered: np.ndarray
    w_label: np.ndarray
    w_span: np.ndarray
    l_w: np.ndarray  # the runs reread
    l_m: np.ndarray  # (question tokens, runs reread): each token's best match


@dataclass
class Library:
    questions: list[Question]  # in scope, with candidates
    every: list[Question]  # every question, in the order of `decline`
    decline: np.ndarray  # every question's decline features (``matched`` left to the fit)
    in_scope: np.ndarray
    unknown: np.ndarray  # names something no essay mentions


def load(name: str) -> Library:
    data = np.load(OUT / f"{name}.npz")
    po, wo, lo = data["p_offsets"], data["w_offsets"], data["l_offsets"]
    m_at = np.concatenate([[0], np.cumsum(data["l_qlen"] * np.diff(lo))])
    every = []
    for i in range(len(data["in_scope"])):
        p, w, ll = slice(po[i], po[i + 1]), slice(wo[i], wo[i + 1]), slice(lo[i], lo[i + 1])
        m = data["l_m"][m_at[i] : m_at[i + 1]].reshape(lo[i + 1] - lo[i], data["l_qlen"][i]).T
        q = Question(data["p_signals"][p], data["p_cos"][p], data["p_label"][p],
                     data["w_pass"][w], data["w_feats"][w], data["w_unanswered"][w],
                     data["w_label"][w], data["w_span"][w], data["l_w"][ll], m)  # fmt: skip
        every.append(q)
    in_scope = data["in_scope"].astype(bool)
    kept = [q for q, s in zip(every, in_scope, strict=True) if s and len(q.p_cos)]
    return Library(kept, every, data["decline"].astype(np.float64), in_scope,
                   data["unknown"].astype(bool))  # fmt: skip


# --- softmax ranking ------------------------------------------------------------------


def _stack(groups: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, ...]:
    """Groups with a positive and a negative, as one matrix with group starts."""
    kept = [(x, y.astype(bool)) for x, y in groups if y.any() and not y.all()]
    sizes = np.array([len(y) for _, y in kept])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    owner = np.repeat(np.arange(len(kept)), sizes)
    x = np.vstack([x for x, _ in kept])
    y = np.concatenate([y for _, y in kept]).astype(np.float64)
    return x, y, starts, owner


def softmax_loss(w: np.ndarray, data: tuple[np.ndarray, ...]) -> tuple[float, np.ndarray]:
    """Mean over groups of -log(softmax probability of the group's positives), and its
    gradient."""
    x, y, starts, owner = data
    s = x @ w
    e = np.exp(s - np.maximum.reduceat(s, starts)[owner])
    z, zp = np.add.reduceat(e, starts), np.add.reduceat(e * y, starts)
    n = len(starts)
    grad = x.T @ (e / z[owner] - y * e / zp[owner])
    return float(np.sum(np.log(z) - np.log(zp))) / n, grad / n


def fit_softmax(data: tuple[np.ndarray, ...], start: np.ndarray, l2: float) -> np.ndarray:
    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = softmax_loss(w, data)
        return value + l2 * w @ w, grad + 2 * l2 * w

    return minimize(loss, start, jac=True, method="L-BFGS-B").x


def _passage_data(libs: list[Library]) -> tuple[np.ndarray, ...]:
    return _stack([(q.p_signals, q.p_label) for lib in libs for q in lib.questions])


def passage_weights(libs: list[Library]) -> tuple[np.ndarray, float]:
    """Retrieval weights fitted on `libs`, the L2 penalty chosen by leave-one-library-out
    loss among them."""
    start = np.array([getattr(WEIGHTS, s) for s in SIGNALS])

    def held_out(l2: float) -> float:
        losses = []
        for i, lib in enumerate(libs):
            w = fit_softmax(_passage_data(libs[:i] + libs[i + 1 :]), start, l2)
            losses.append(softmax_loss(w, _passage_data([lib]))[0])
        return float(np.mean(losses))

    l2 = min(L2_GRID, key=held_out)
    return fit_softmax(_passage_data(libs), start, l2), l2


# --- quotes, as the engine chooses them -----------------------------------------------


def hand_set_quotes() -> np.ndarray:
    """The hand-set quote weights (the scale of a quote's run is 1), signed as features."""
    rest = [getattr(WEIGHTS, t) for t in QUOTE_TERMS[len(WINDOW_FEATURES) :]]
    wb = np.array(window_weights(WEIGHTS) + rest)
    wb[QUOTE_TERMS.index("unanswered")] *= -1
    return wb


def quote_rows(q: Question, wa: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The runs of the passages examined for quotes (the best :data:`RERANK` by retrieval
    score): their quote features, labels, and which runs they are."""
    fused = q.p_signals @ wa
    top = np.argsort(-fused, kind="stable")[:RERANK]
    keep = np.flatnonzero(np.isin(q.w_pass, top))
    x = np.column_stack([q.w_feats[keep], q.w_unanswered[keep], q.p_cos[q.w_pass[keep]],
                         fused[q.w_pass[keep]]])  # fmt: skip
    return x, q.w_label[keep], keep


def examined(q: Question, wa: np.ndarray, wb: np.ndarray) -> tuple[np.ndarray, ...]:
    """The quotes the engine examines: the best run of each examined passage by its run
    features (the first best on a tie), as rows of :func:`quote_rows`, best first by
    score; with those rows' labels, scores, spans and runs."""
    x, y, keep = quote_rows(q, wa)
    n_w = len(WINDOW_FEATURES)
    inside, total = x[:, :n_w] @ wb[:n_w], x @ wb
    best = best_of_each(q.w_pass[keep].tolist(), inside.tolist())
    pool = np.array(sorted(best.values(), key=lambda j: -total[j]), dtype=int)
    return pool, y, total, q.w_span[keep], keep


def reread(q: Question, pool: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first :data:`QUOTES_READ` of `pool` that were reread token by token (a quote
    outside the recorded ones, rare, is left out), and their token matches."""
    column = {int(r): c for c, r in enumerate(q.l_w)}
    head = [j for j in pool[:QUOTES_READ] if int(keep[j]) in column]
    return np.array(head, dtype=int), q.l_m[:, [column[int(keep[j])] for j in head]]


def reorder_rows(q: Question, wa: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The reread quotes' features for reordering (score, the share of the question each
    meets, that share standardised among them) and their labels."""
    pool, y, total, _, keep = examined(q, wa, hand_set_quotes())
    head, m = reread(q, pool, keep)
    meets = late.match(m)
    return np.column_stack([total[head], meets, standardised(meets)]), y[head]


def picks(q: Question, wa: np.ndarray, wb: np.ndarray, reorder: Reorder | None = None,
          k: int = 3) -> list[tuple[bool, int]]:  # fmt: skip
    """Whether each of the first k quotes holds the answer, and its length: the examined
    quotes (:func:`examined`), the reread ones reordered by `reorder` (keeping their
    scores), then picked greedily with :data:`DIVERSITY` per quote already taken from
    the essay, overlaps skipped (near repeats are not simulated)."""
    pool, y, total, spans, keep = examined(q, wa, wb)
    if reorder is not None:
        head, m = reread(q, pool, keep)
        order = reorder.order(total[head].tolist(), late.match(m))
        total = total.copy()
        total[head[order]] = total[head]
    candidates, chosen = pool.tolist(), []
    counts: dict[int, int] = {}
    while candidates and len(chosen) < k:
        j = max(candidates,
                key=lambda j: total[j] - DIVERSITY * counts.get(int(spans[j][0]), 0))  # fmt: skip
        candidates.remove(j)
        doc, s, e = spans[j].tolist()
        if any(spans[c][0] == doc and spans[c][1] < e and s < spans[c][2] for c in chosen):
            continue
        counts[doc] = counts.get(doc, 0) + 1
        chosen.append(j)
    return [(bool(y[j]), int(spans[j][2] - spans[j][1])) for j in chosen]


def score(questions: list[Question], wa: np.ndarray, wb: np.ndarray,
          reorder: Reorder | None = None) -> dict[str, Any]:  # fmt: skip
    chosen = [picks(q, wa, wb, reorder) for q in questions]
    hits = [[h for h, _ in c] for c in chosen]
    return {"hit@1": sum(h[:1] == [True] for h in hits), "hit@3": sum(any(h) for h in hits),
            "n": len(questions),
            "quote_median": float(np.median([n for c in chosen for _, n in c]))}  # fmt: skip


def fit_reorder(libs: list[Library], wa: np.ndarray) -> Reorder:
    """How the reread quotes are reordered: a softmax over each question's reread quotes,
    the ones holding an answering phrase its target (L2 fixed at 1e-3), its weights
    divided by the score's so that the quotes' scores keep their scale."""
    data = _stack([reorder_rows(q, wa) for lib in libs for q in lib.questions])
    w = fit_softmax(data, np.array([1.0, 0.0, 0.0]), 1e-3)
    return Reorder(round(float(w[1] / w[0]), 5), round(float(w[2] / w[0]), 5))


def quote_weights(questions: list[Question], wa: np.ndarray) -> np.ndarray:
    """Learned quote weights with the cost per extra sentence raised until the median
    quote is no longer than the hand-set weights' on these questions (``--quotes``)."""
    groups = [quote_rows(q, wa)[:2] for q in questions]
    wb = fit_softmax(_stack(groups), hand_set_quotes(), 1e-2)
    target = score(questions, wa, hand_set_quotes())["quote_median"]
    at = WINDOW_FEATURES.index("extra_sentence")
    for cost in np.linspace(0.0, 2.0, 41):
        trial = wb.copy()
        trial[at] = min(wb[at], -cost)
        if score(questions, wa, trial)["quote_median"] <= target:
            return trial
    return trial


# --- declining ------------------------------------------------------------------------


def decline_matrix(lib: Library, wa: np.ndarray) -> np.ndarray:
    """A library's decline features, ``matched`` computed as the engine does under the
    retrieval weights `wa`: over the quotes it rereads (none: 0)."""
    x = lib.decline.copy()
    for i, q in enumerate(lib.every):
        pool, _, _, _, keep = examined(q, wa, hand_set_quotes())
        x[i, DECLINE_FEATURES.index("matched")] = late.matched(reread(q, pool, keep)[1])
    return x


def decline_model(libs: list[Library], wa: np.ndarray) -> dict[str, Any]:
    """The decline fitted on `libs`, and the excerpt threshold (module docstring)."""
    x = np.vstack([decline_matrix(lib, wa) for lib in libs])
    y = np.concatenate([lib.in_scope for lib in libs])
    model = LogisticRegression(max_iter=5000).fit(x, y)
    scores = model.decision_function(x)
    return {"threshold": round(float(np.quantile(x[y, 0], QUANTILE)), 4),
            "decline": {"features": list(DECLINE_FEATURES),
                        "coef": [round(float(c), 6) for c in model.coef_[0]],
                        "intercept": round(float(model.intercept_[0]), 6),
                        "cut": round(float(np.quantile(scores[y], QUANTILE)), 6)}}  # fmt: skip


def declines(lib: Library, model: dict[str, Any], wa: np.ndarray) -> dict[str, int]:
    d = model["decline"]
    out = decline_matrix(lib, wa) @ np.array(d["coef"]) + d["intercept"] < d["cut"]
    return {"false_declines": int((out & lib.in_scope).sum()),
            "off_topic_declined": int((out & ~lib.in_scope).sum()),
            "off_topic": int((~lib.in_scope).sum())}  # fmt: skip


def base_declines(lib: Library, others: list[Library]) -> dict[str, int]:
    """The hand-set rule on the same questions: a cosine threshold (the 1st percentile
    rule) and the veto on names no essay mentions below a cosine of 0.60."""
    x = np.vstack([o.decline for o in others])
    t = np.quantile(x[np.concatenate([o.in_scope for o in others]), 0], QUANTILE)
    out = (lib.decline[:, 0] < t) | (lib.unknown & (lib.decline[:, 0] < 0.60))
    return {"false_declines": int((out & lib.in_scope).sum()),
            "off_topic_declined": int((out & ~lib.in_scope).sum())}  # fmt: skip


# --- the artifacts --------------------------------------------------------------------


def fit(libs: list[Library]) -> dict[str, Any]:
    wa, l2 = passage_weights(libs)
    reorder = fit_reorder(libs, wa)
    return {"weights": {s: round(float(v), 5) for s, v in zip(SIGNALS, wa, strict=True)},
            "l2": l2, "reorder": {"match": reorder.match, "spread": reorder.spread},
            **decline_model(libs, wa)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quotes", action="store_true")
    parser.add_argument("--allow-dirty", action="store_true",
                        help="write from a tree with uncommitted changes (recorded)")  # fmt: skip
    args = parser.parse_args()
    made_by = source(args.allow_dirty, ("scikit-learn", "scipy"))
    libs = {name: load(name) for name in available() if (OUT / f"{name}.npz").exists()}
    figures = {}
    for name, lib in libs.items():
        others = [o for n, o in libs.items() if n != name]
        fold = fit(others)
        wa = np.array([fold["weights"][s] for s in SIGNALS])
        hand = np.array([getattr(WEIGHTS, s) for s in SIGNALS])
        figures[name] = {"hand_set": {**score(lib.questions, hand, hand_set_quotes()),
                                      **base_declines(lib, others)},
                         "learned": {**score(lib.questions, wa, hand_set_quotes(),
                                           Reorder(**fold["reorder"])),
                                     **declines(lib, fold, wa)},
                         "learned, not reordered": score(lib.questions, wa,
                                                         hand_set_quotes())}  # fmt: skip
        if args.quotes:
            train = [q for o in others for q in o.questions]
            figures[name]["learned quotes"] = score(lib.questions, wa, quote_weights(train, wa))
        sidecar(FOLDS / f"{name}.npz").write_text(json.dumps(fold, indent=1))
        print(name, json.dumps(figures[name]), flush=True)
    shipped = fit(list(libs.values()))
    shipped["pairs_with"] = {"delta": ARTIFACT.name, "sha256": tuning_sha256(ARTIFACT)}
    shipped["provenance"] = {
        "data_sha256": data_hash(list(libs)), **made_by, "libraries": list(libs),
        "features": "train/rank_features.py under each library's leave-one-out model",
        "rules": f"L2 from {list(L2_GRID)} by inner LOLO loss; reorder L2 1e-3; threshold "
                 f"and decline cut at the {QUANTILE:.0%} quantile of in-scope questions",
        "lolo_offline": figures,
    }  # fmt: skip
    sidecar(ARTIFACT).write_text(json.dumps(shipped, indent=1) + "\n")
    print("shipped:", json.dumps({k: v for k, v in shipped.items() if k != "provenance"}))


if __name__ == "__main__":
    main()
