"""What the engine learned about answering, beside the model it learned it for.

A tuned model's cosines run in their own range and its signals weigh differently, so
what was fitted for it travels with it: ``<tuning>.answering.json`` beside the tuning
artifact (``train/fit_answering.py`` writes it, fitted leave-one-library-out on the
question sets). It holds the retrieval weights, the cosine an excerpt is measured
against, how the best quotes reread token by token are reordered, and the decision to
decline. The base model has none and answers with the
hand-set :data:`~bot.answer.retrieve.WEIGHTS` and a cosine threshold.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from bot.answer.retrieve import WEIGHTS, Weights
from bot.answer.scope import DECLINE_FEATURES
from bot.index.embed import paired_elsewhere

#: Judgment: the base model's decline threshold (``Settings.abstain_threshold`` when
#: unset), chosen on the seeds and library2.
BASE_THRESHOLD = 0.40


@dataclass(frozen=True)
class Decline:
    """ "Can this library answer this question?", learned from in-scope and off-topic
    questions of other libraries: a logistic model over :data:`DECLINE_FEATURES`, with
    the cut below which it declines (set by a rule fixed before fitting: the 1st
    percentile of the training libraries' in-scope questions)."""

    coef: tuple[float, ...]
    intercept: float
    cut: float

    def margin(self, features: tuple[float, ...]) -> float:
        """How far the question is on the answerable side of the cut (negative: decline)."""
        z = self.intercept + sum(c * f for c, f in zip(self.coef, features, strict=True))
        return z - self.cut

    def declines(self, features: tuple[float, ...]) -> bool:
        return self.margin(features) < 0


def standardised(values: np.ndarray) -> np.ndarray:
    """Values as z-scores among themselves (0 when they do not differ): what is compared
    is one quote against the others, whatever a library's range."""
    spread = float(values.std())
    if spread <= 1e-9:
        return np.zeros_like(values, dtype=np.float64)
    return (values - values.mean()) / spread


@dataclass(frozen=True)
class Reorder:
    """How the best quotes, reread token by token (:mod:`bot.answer.late`), are put in a
    new order: by their score plus `match` times the share of the question each meets
    and `spread` times that share standardised among them (learned from which quote holds
    the answer, on other libraries). They keep their scores, reassigned in the new order,
    so that what follows (the essays' diversity, the community's feedback) weighs them as
    before."""

    match: float
    spread: float

    def order(self, scores: list[float], meets: np.ndarray) -> list[int]:
        """The quotes' positions, best first."""
        value = np.asarray(scores) + self.match * meets + self.spread * standardised(meets)
        return sorted(range(len(scores)), key=lambda i: -value[i])


@dataclass(frozen=True)
class Answering:
    """How questions are answered with one model.

    Attributes:
        weights: How retrieval signals and quote features combine.
        threshold: The cosine excerpts are measured against (and summaries' floor); with
            no ``decline``, also the cosine below which the engine declines.
        decline: The learned decision to decline, if any.
        reorder: How the best quotes reread token by token are reordered, if they are.
        source: Where this was read from (empty for the hand-set one).
    """

    weights: Weights = WEIGHTS
    threshold: float = BASE_THRESHOLD
    decline: Decline | None = None
    reorder: Reorder | None = None
    source: str = ""

    @property
    def rereads(self) -> bool:
        """Whether the best quotes are reread token by token (to reorder them or to
        decide whether to decline)."""
        return self.decline is not None or self.reorder is not None


HAND_SET = Answering()


def sidecar(tuning: Path) -> Path:
    """Where a tuning artifact's answering file is: ``NAME.answering.json`` beside it."""
    return tuning.with_name(f"{tuning.name.removesuffix('.npz')}.answering.json")


def _finite(value: Any, what: str) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{what} is not a finite number")
    return number


def read_answering(tuning: Path | None) -> Answering:
    """The answering learned for a tuning artifact, or the hand-set one when the model is
    untuned or its artifact came without one.

    Raises:
        ValueError: The file is there but malformed (names an unknown weight, a decline
            over other features, a value that is not a finite number), or it was fitted
            for another delta than the one beside it (``pairs_with``: its SHA-256).
    """
    path = sidecar(tuning) if tuning is not None else None
    if tuning is None or path is None or not path.is_file():
        return HAND_SET
    data = json.loads(path.read_text(encoding="utf-8"))
    if paired_elsewhere(data, tuning):
        raise ValueError(f"{path.name} was fitted for another {tuning.name} (its SHA-256 differs)")
    known = {f.name for f in fields(Weights)}
    given = data.get("weights", {})
    if not set(given) <= known:
        raise ValueError(f"{path.name}: unknown weights {sorted(set(given) - known)}")
    weights = replace(WEIGHTS, **{k: _finite(v, k) for k, v in given.items()})
    decline = None
    if "decline" in data:
        d = data["decline"]
        if tuple(d["features"]) != DECLINE_FEATURES:
            raise ValueError(f"{path.name}: the decline is over other features")
        coef = tuple(_finite(c, "coef") for c in d["coef"])
        decline = Decline(coef, _finite(d["intercept"], "intercept"), _finite(d["cut"], "cut"))
    reorder = None
    if "reorder" in data:
        r = data["reorder"]
        reorder = Reorder(_finite(r["match"], "match"), _finite(r["spread"], "spread"))
    threshold = _finite(data["threshold"], "threshold")
    return Answering(weights, threshold, decline, reorder, path.name)
