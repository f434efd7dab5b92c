"""Scoring a question set against the engine: `python bot.py eval FILE.jsonl [--library DIR]`.

A question set is JSON lines, in either shape used in this project::

    {"id": "d01", "question": "...", "must_quote": ["afford to end the war"]}
    {"id": "d11", "question": "...", "must_quote": [], "abstain": true}
    {"id": "p04", "question": "...", "doc": "paine-crisis-01", "must_quote": ["..."],
     "author": "Paine", "role": "essay"}
    {"id": "o03", "question": "...", "must_quote": [], "role": "out_of_scope"}

A question is a hit at rank k when one of its ``must_quote`` phrases lies inside the k-th
quote (whitespace folded, case ignored, curly quotes read as straight). ``doc`` (``a|b``
for either) and ``author`` are optional: they add the right-essay and attribution rates.
Verbatim is checked against the essay files on disk, not the index.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bot.answer.results import Answer, Excerpt

_STRAIGHT = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'"})


def normalise(text: str) -> str:
    """Whitespace folded, case ignored, curly quotes straight: how phrases are matched."""
    return " ".join(text.translate(_STRAIGHT).split()).casefold()


def read_questions(path: Path) -> list[dict[str, Any]]:
    """The question set in a JSON-lines file.

    Raises:
        OSError, ValueError: The file cannot be read, or a line is not a JSON object.
    """
    items = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    if not all(isinstance(i, dict) and "question" in i for i in items):
        raise ValueError("every line must be a JSON object with a 'question'")
    return items


#: Question kinds that must be declined (../shared/eval/README.md: "near" is on the
#: library's subjects but about something it never mentions, "far" out of its scope).
OFF_TOPIC_KINDS = ("near", "far")


def out_of_scope(item: dict[str, Any]) -> bool:
    """The question must be declined."""
    return (
        bool(item.get("abstain"))
        or item.get("role") == "out_of_scope"
        or item.get("kind") in OFF_TOPIC_KINDS
    )


def rank_of(item: dict[str, Any], excerpts: tuple[Excerpt, ...]) -> int | None:
    """The 1-based rank of the first quote that holds a must-quote phrase (and, when the
    item names a comment or essay role, has it)."""
    phrases = [normalise(p) for p in item.get("must_quote", [])]
    role = item.get("role")
    for i, ex in enumerate(excerpts):
        if role in ("essay", "comment") and ex.role != role:
            continue
        if any(p in normalise(ex.quote) for p in phrases):
            return i + 1
    return None


class Answerer(Protocol):
    """What can be scored: the engine, or a baseline built the same way (bench/)."""

    def ask(self, question: str, k: int | None = None) -> Answer:
        """The excerpts for a question, best first, or a decline."""
        ...

    def essay_path(self, doc_id: str) -> str:
        """The file an essay was read from."""
        ...


def on_disk(ex: Excerpt, engine: Answerer, files: dict[str, str]) -> bool:
    """The quote stands, whitespace aside, in its essay's file as it is on disk."""
    path = engine.essay_path(ex.doc_id)
    if path not in files:
        try:
            files[path] = " ".join(Path(path).read_text(encoding="utf-8").split())
        except (OSError, UnicodeDecodeError):
            files[path] = ""
    return " ".join(ex.quote.split()) in files[path]


@dataclass
class Tally:
    """Counts over a question set; :meth:`result` turns them into rates."""

    questions: int = 0
    in_scope: int = 0
    hits1: int = 0
    hits3: int = 0
    reciprocal: float = 0.0
    with_doc: int = 0
    essay3: int = 0
    false_declines: int = 0
    off_topic: int = 0
    declined_off_topic: int = 0
    quotes: int = 0
    verbatim: int = 0
    attributed: int = 0
    attribution_checked: int = 0
    lengths: list[int] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)

    def result(self) -> dict[str, Any]:
        """The figures of the contract (rates in 0..1, lengths in characters)."""
        n = max(self.in_scope, 1)
        return {
            "questions": self.questions,
            "in_scope": self.in_scope,
            "hit@1": self.hits1 / n,
            "hit@3": self.hits3 / n,
            "mrr": self.reciprocal / n,
            "essay@3": self.essay3 / self.with_doc if self.with_doc else None,
            "false_declines": self.false_declines,
            "off_topic": self.off_topic,
            "declines": self.declined_off_topic,
            "decline_accuracy": (self.in_scope - self.false_declines + self.declined_off_topic)
            / max(self.questions, 1),
            "verbatim": self.verbatim / self.quotes if self.quotes else 1.0,
            "attribution": (
                self.attributed / self.attribution_checked if self.attribution_checked else None
            ),
            "quote_median": statistics.median(self.lengths) if self.lengths else 0,
            "quote_max": max(self.lengths, default=0),
            "rows": self.rows,
        }


def _score(
    tally: Tally, item: dict[str, Any], excerpts: tuple[Excerpt, ...], declined: bool
) -> int | None:
    """Count one in-scope question; returns the hit's rank."""
    tally.in_scope += 1
    tally.false_declines += declined
    rank = rank_of(item, excerpts[:3])
    tally.hits1 += rank == 1
    tally.hits3 += rank is not None
    tally.reciprocal += 1.0 / rank if rank else 0.0
    if item.get("doc"):
        tally.with_doc += 1
        tally.essay3 += any(ex.doc_id in item["doc"].split("|") for ex in excerpts[:3])
    if rank is not None and item.get("author"):
        tally.attribution_checked += 1
        names = [a.casefold() for a in item["author"].split("|")]
        tally.attributed += any(a in excerpts[rank - 1].author.casefold() for a in names)
    return rank


def evaluate(
    engine: Answerer, items: list[dict[str, Any]], k: int = 3, **options: Any
) -> dict[str, Any]:
    """Score the engine on a question set (see the module docstring for the shapes).

    Args:
        engine: What answers.
        items: The questions.
        k: Quotes scored per question.
        **options: Passed to ``ask`` (the engine's ``feedback=False`` scores it without
            the community's ratings).
    """
    tally = Tally()
    files: dict[str, str] = {}
    for item in items:
        asking: Any = engine  # options are the engine's own (a baseline takes none)
        ans = asking.ask(item["question"], k=max(k, 3), **options)
        tally.questions += 1
        for ex in ans.excerpts[:k]:
            tally.quotes += 1
            tally.verbatim += on_disk(ex, engine, files)
            tally.lengths.append(len(" ".join(ex.quote.split())))
        rank = None
        if out_of_scope(item):
            tally.off_topic += 1
            tally.declined_off_topic += ans.abstained
        else:
            rank = _score(tally, item, ans.excerpts, ans.abstained)
        tally.rows.append({
            "id": item.get("id"), "abstained": ans.abstained, "rank": rank,
            "best_similarity": ans.best_similarity,
            "top": [ex.quote for ex in ans.excerpts[:1]],
        })  # fmt: skip
    return tally.result()


def figures(result: dict[str, Any], precise: bool = True) -> dict[str, str]:
    """A scored set's figures, formatted: to a tenth of a percent and MRR to three places,
    or (not `precise`: a table's cells) whole percents and two places."""

    def pct(value: float | None) -> str:
        return "—" if value is None else f"{value:.{1 if precise else 0}%}"

    return {
        "hit@1": pct(result["hit@1"]),
        "hit@3": pct(result["hit@3"]),
        "MRR": f"{result['mrr']:.{3 if precise else 2}f}",
        "essay@3": pct(result["essay@3"]),
        "false declines": str(result["false_declines"]),
        "declines": f"{result['declines']}/{result['off_topic']}",
        "verbatim": pct(result["verbatim"]),
        "attribution": pct(result["attribution"]),
        "quote median": f"{result['quote_median']:.0f}",
        "quote max": str(result["quote_max"]),
        "decline accuracy": pct(result["decline_accuracy"]),
    }


def summary_line(result: dict[str, Any]) -> str:
    """The figures in one line, quote length beside the hit rates."""
    f = figures(result)
    rates = "  ".join(f"{name} {f[name]}" for name in ("hit@1", "hit@3", "MRR", "essay@3",
                                                          "false declines", "declines",
                                                          "verbatim", "attribution"))  # fmt: skip
    return (
        f"{rates}  quote median {f['quote median']} / max {f['quote max']} chars  "
        f"decline accuracy {f['decline accuracy']}"
    )
