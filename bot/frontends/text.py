"""Pure functions that turn engine results into text (terminal) and attribution lines."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

from bot.answer.feedback import Gap
from bot.answer.results import Answer, Excerpt, Role
from bot.answer.summarize import Summary, SummaryKind
from bot.answer.whosaid import WhoSaid

_NOT_COVERED = "The library does not cover that"
_NOTHING_CLOSE = "None of the essays says anything close enough to quote"
_TRY = "try asking about what they discuss ({hint} lists them)."
ESSAYS_HINT = "`python bot.py essays`"


def decline(ans: Answer | None = None, essays_hint: str = ESSAYS_HINT) -> str:
    """Why the library has no answer: the names it never mentions, when that is the reason.

    Args:
        ans: The declined answer (None for a summary or a topic).
        essays_hint: How this front end lists the essays.
    """
    try_instead = _TRY.format(hint=essays_hint)
    if ans is None or not ans.unknown_names:
        return f"{_NOT_COVERED}. {_NOTHING_CLOSE}; {try_instead}"
    names = ", ".join(ans.unknown_names)
    return f"{_NOT_COVERED}: no essay mentions {names}. {try_instead.capitalize()}"


def one_line(text: str) -> str:
    """Collapse all whitespace (newlines, no-break spaces) to single spaces."""
    return " ".join(text.split())


def attribution(ex: Excerpt) -> str:
    """Who said it, where and when: "Mick Ryan, “Title” (2026-02-03), Futura Doctrina".

    Reader comments are attributed as comments on the essay, never to its author; words the
    essay quotes are attributed to their speaker, "quoted by" the essay's author.
    """
    essay = ex.essay
    title = f"“{essay.title}”"
    if ex.role == Role.COMMENT:
        who = "reader comment" if ex.author == "reader comment" else f"{ex.author} (reader comment)"
        by = f" by {essay.author}" if essay.author else ""
        head = f"{who} on {title}{by}"
    elif ex.quoted_by:
        note = f" ({ex.note})" if ex.note else ""
        head = f"{ex.author}{note}, quoted by {ex.quoted_by} in {title}"
    elif essay.author and ex.author != essay.author:
        note = f" ({ex.note})" if ex.note else ""
        head = f"{ex.author}{note}, on {essay.author}’s {title}"
    else:
        head = f"{ex.author}, {title}"
    bits = [head + (f" ({essay.date})" if essay.date else "")]
    if essay.source:
        bits.append(essay.source)
    if essay.via:
        bits.append(f"via {essay.via}")
    return ", ".join(bits)


def position(ex: Excerpt | Any) -> str:
    """Where in the essay: "¶ 12" or "comment 2"."""
    return f"comment {ex.paragraph}" if ex.role == "comment" else f"¶ {ex.paragraph}"


def render_answer(ans: Answer, width: int = 88) -> str:
    """An answer as block quotes with attribution lines, for the terminal."""
    if ans.abstained:
        return decline(ans)
    blocks = []
    for ex in ans.excerpts:
        body = textwrap.fill(
            one_line(ex.quote), width=width, initial_indent="> ", subsequent_indent="> "
        )
        blocks.append(f"{body}\n— {attribution(ex)}, {position(ex)}")
    return "\n\n".join(blocks)


NOT_FOUND = "Not in the library: no essay has words close enough to that line."
SOURCES_HEADING = "What the essays say about this"


def render_whosaid(result: WhoSaid, width: int = 88) -> str:
    """Where a line comes from: the essay's exact words, who wrote them, how close."""
    if not result.found:
        return NOT_FOUND
    blocks = []
    for m in result.matches:
        ex = m.excerpt
        body = textwrap.fill(
            one_line(ex.quote), width=width, initial_indent="> ", subsequent_indent="> "
        )
        blocks.append(f"{body}\n— {attribution(ex)}, {position(ex)} · {m.closeness()}")
    return "\n\n".join(blocks)


NO_GAPS = "No gaps recorded: no declined or down-rated questions yet."


def render_gaps(gaps: Sequence[Gap]) -> str:
    """What the community asked that the library lacks, most asked first."""
    if not gaps:
        return NO_GAPS
    lines = []
    for i, g in enumerate(gaps, 1):
        what = []
        if g.declined:
            what.append(f"{g.declined} declined")
        if g.rated_down:
            what.append(f"{g.rated_down} rated down")
        people = f"{g.users} {'person' if g.users == 1 else 'people'}"
        lines.append(f"{i}. “{one_line(g.question)}” — asked {g.count}× by {people} "
                     f"({', '.join(what)}; last {g.last})")  # fmt: skip
        lines += [f"     also: “{one_line(q)}”" for q in g.examples if q != g.question][:2]
    return "\n".join(lines)


def answer_json(ans: Answer) -> dict[str, Any]:
    """The JSON object of the CLI contract."""
    return {
        "question": ans.question,
        "abstained": ans.abstained,
        "answer": render_answer(ans),
        "excerpts": [ex.as_dict() for ex in ans.excerpts],
    }


def render_summary(summary: Summary, width: int = 88) -> str:
    """A summary for the terminal: each point a block quote with its source.

    An essay summary names its source once and gives each point's paragraph; topic and
    perspective summaries group points under the essay or the author they come from.
    """
    if summary.abstained:
        return decline()

    def quote(ex: Excerpt) -> str:
        return textwrap.fill(
            one_line(ex.quote), width=width, initial_indent="> ", subsequent_indent="> "
        )

    out: list[str] = []
    if summary.kind == SummaryKind.ESSAY:
        first = summary.points[0]
        out.append(f"Key sentences of {attribution(first)}, in the essay's order:")
        for ex in summary.points:
            out.append(f"{quote(ex)}\n  ({position(ex)})")
        return "\n\n".join(out)
    key = (lambda e: e.doc_id) if summary.kind == SummaryKind.TOPIC else (lambda e: e.author)
    current = None
    for ex in summary.points:
        if key(ex) != current:
            current = key(ex)
            heading = ex.essay.title if summary.kind == SummaryKind.TOPIC else ex.author
            out.append(f"## {heading}")
        out.append(f"{quote(ex)}\n— {attribution(ex)}, {position(ex)}")
    return "\n\n".join(out)
