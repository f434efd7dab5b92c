"""Engine results as Discord embeds; every Discord limit is kept here and nowhere else.

Quotes are escaped so they render as written (an essay's `*` or `_` stays a character)
and trimmed only at sentence or word boundaries, with an ellipsis; the full text is one
"Show context" away. Nothing the bot sends may ping anyone: see :data:`NO_MENTIONS`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import discord

from bot.answer.engine import EssayInfo, EssayMeta
from bot.answer.feedback import Gap
from bot.answer.results import Answer, Excerpt
from bot.answer.summarize import Summary, SummaryKind
from bot.answer.whosaid import WhoSaid
from bot.frontends.text import (
    NOT_FOUND,
    attribution,
    decline,
    one_line,
    position,
    render_gaps,
)

# Discord's limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits)
CONTENT = 2000
EMBED_TITLE = 256
EMBED_DESCRIPTION = 4096
FIELD_NAME = 256
FIELD_VALUE = 1024
FOOTER = 2048

EMBED_TOTAL = 6000
EMBEDS_PER_MESSAGE = 10
AUTOCOMPLETE_CHOICES = 25
CHOICE_NAME = 100
NAME_RE = re.compile(r"^[-_\w]{1,32}$")
#: The longest question and topic the slash commands accept (Discord allows 6,000; the
#: engine refuses questions over MAX_QUESTION_CHARS, 1,000 by default, in any case).
MAX_QUESTION = 1000
MAX_TOPIC = 200
#: The longest quote shown in one embed before trimming (keeps 5 excerpts under 6,000).
QUOTE_CHARS = 900
ELLIPSIS = "…"

NO_MENTIONS = discord.AllowedMentions.none()
COLOUR = discord.Colour.from_rgb(70, 110, 160)


def trim(text: str, limit: int) -> str:
    """Shorten text to `limit` characters at a sentence, else a word, boundary, adding "…".

    Never cuts inside a word and never exceeds the limit.
    """
    text = text.strip()
    if len(text) <= limit:
        return text
    room = limit - len(ELLIPSIS)
    head = text[: room + 1]
    sentence_ends = [m.end() for m in re.finditer(r"[.!?…][\"”’')\]]*\s", head)]
    if sentence_ends and sentence_ends[-1] > room // 2:
        cut = head[: sentence_ends[-1]].rstrip()
    else:
        space = head.rfind(" ")
        cut = head[:space].rstrip() if space > 0 else head[:room]
    cut = cut[:room].rstrip(" ,;:—–-")
    return cut + ELLIPSIS


#: What makes markdown anywhere in a line: emphasis, spoilers, code, block quotes, masked
#: links (``[text](url)``, each bracket: discord.py's escape left the second link of a
#: line live), mentions, channels, timestamps and custom emoji (``<@1>``, ``<:e:1>``).
_INLINE = re.compile(r"([\\*_~`|>\[\]<])")
#: What makes markdown at a line's start: headings and subtext (``#``, ``-#``) and lists
#: (``-``, ``+``, ``1.``).
_LINE_START = re.compile(r"^([ \t]*)([#+-])", re.M)
_NUMBERED = re.compile(r"^([ \t]*\d+)([.)])", re.M)


def escape(text: str) -> str:
    """Escape every markdown construct so text renders as written: essays' words are
    data, never markup (a backslash before punctuation shows the character itself)."""
    text = _INLINE.sub(r"\\\1", text)
    text = _LINE_START.sub(r"\1\\\2", text)
    return _NUMBERED.sub(r"\1\\\2", text)


def _quote_block(text: str, limit: int) -> str:
    return "> " + escape(trim(one_line(text), limit))


def excerpt_embed(
    ex: Excerpt, index: int | None = None, budget: int = EMBED_TOTAL, heading: str = ""
) -> discord.Embed:
    """One excerpt: the verbatim quote, the essay as title (linked when known), the
    attribution as footer, all within `budget` characters (and every per-field limit)."""
    budget = max(300, budget)
    prefix = heading + (f"{index}. " if index is not None else "")
    title = prefix + trim(ex.essay.title, min(EMBED_TITLE, budget // 5) - len(prefix))
    footer = trim(f"— {attribution(ex)}, {position(ex)}", min(FOOTER, budget // 3))
    room = min(QUOTE_CHARS, EMBED_DESCRIPTION, budget - len(title) - len(footer))
    embed = discord.Embed(
        title=title,
        url=ex.essay.link,
        description=_fitted_block(ex.quote, room),
        colour=COLOUR,
    )
    embed.set_footer(text=footer)
    return embed


def _fitted_block(quote: str, room: int) -> str:
    """The quote as an escaped block quote in at most `room` characters, escaping counted
    (a markdown-heavy quote can double in length)."""
    limit = room
    while (block := _quote_block(quote, limit)) and len(block) > room and limit > 1:
        limit = max(1, min(limit - 1, limit - (len(block) - room)))  # always shrinks
    return block if len(block) <= room else "> " + ELLIPSIS


def excerpt_embeds(
    excerpts: Sequence[Excerpt], start: int = 1, heading: str = ""
) -> list[discord.Embed]:
    """Embeds for a page of excerpts that together fit one Discord message.

    Args:
        excerpts: The page's excerpts (at most ten are shown).
        start: The number of the first one.
        heading: Put before each title ("Context · ").
    """
    excerpts = list(excerpts)[:EMBEDS_PER_MESSAGE]
    if not excerpts:
        return []
    budget = EMBED_TOTAL // len(excerpts) - 10
    return fit([excerpt_embed(ex, start + i, budget, heading) for i, ex in enumerate(excerpts)])


def fit(embeds: list[discord.Embed]) -> list[discord.Embed]:
    """Shrink the longest descriptions until the message is within Discord's 6,000-character
    total, counted as Discord counts it: after markdown escaping."""
    while (over := sum(len(e) for e in embeds) - EMBED_TOTAL) > 0:
        longest = max(embeds, key=lambda e: len(e.description or ""))
        text = longest.description or ""
        if len(text) <= 40:
            break  # nothing left worth cutting (titles and footers have their own budgets)
        cut = trim(text, max(40, len(text) - over - 8))
        longest.description = cut[: -len(ELLIPSIS)].rstrip("\\") + ELLIPSIS
    return embeds


def decline_embed(question: str, answer: Answer | None = None) -> discord.Embed:
    """The honest "not covered" answer (naming what no essay mentions, if that is why)."""
    return discord.Embed(
        title="Not covered by the library",
        description=escape(trim(decline(answer, "`/essays`"), 1000)),
        colour=discord.Colour.light_grey(),
    ).set_footer(text=trim(f"Question: {one_line(question)}", FOOTER))


def whosaid_embeds(result: WhoSaid) -> list[discord.Embed]:
    """Where a line comes from: each match's exact words, attribution and closeness."""
    if not result.found:
        return [
            discord.Embed(
                title="Not in the library", description=escape(NOT_FOUND),
                colour=discord.Colour.light_grey(),
            ).set_footer(text=trim(f"Line: {one_line(result.query)}", FOOTER))
        ]  # fmt: skip
    matches = result.matches[:EMBEDS_PER_MESSAGE]
    budget = EMBED_TOTAL // len(matches) - 40
    embeds = []
    for i, match in enumerate(matches, 1):
        embed = excerpt_embed(match.excerpt, i, budget)
        embed.set_footer(text=trim(f"{embed.footer.text} · {match.closeness()}", FOOTER))
        embeds.append(embed)
    return fit(embeds)


def announcement_embed(essay: EssayMeta, summary: Summary, changed: bool) -> discord.Embed:
    """The card for an essay added to the library (or changed): title and link, author,
    date, source, and its first two key sentences, verbatim."""
    head = "Updated in the library" if changed else "New in the library"
    points = [p for p in summary.points[:2] if p.quote.strip()]
    room = (EMBED_DESCRIPTION - 4) // max(1, len(points))
    embed = discord.Embed(
        title=trim(f"{head}: {essay.title}", EMBED_TITLE), url=essay.link, colour=COLOUR,
        description="\n\n".join(_fitted_block(p.quote, min(room, QUOTE_CHARS)) for p in points),
    )  # fmt: skip
    for name, value in (("Author", essay.author), ("Date", essay.date), ("Source", essay.source)):
        if value:
            embed.add_field(name=name, value=escape(trim(value, FIELD_VALUE // 2)), inline=True)
    embed.set_footer(text=trim(f"/summary essay:{essay.doc_id} for its key sentences", FOOTER))
    return fit([embed])[0]


def gaps_embed(gaps: Sequence[Gap]) -> discord.Embed:
    """The reading list the community asked for: declined and down-rated questions."""
    text, limit = render_gaps(gaps), EMBED_DESCRIPTION
    while len(shown := escape(trim(text, limit))) > EMBED_DESCRIPTION:  # escaping counts
        limit -= len(shown) - EMBED_DESCRIPTION
    embed = discord.Embed(title="What the library lacks", description=shown, colour=COLOUR)
    return embed.set_footer(text="Declined and down-rated questions, similar ones together")


def summary_embeds(summary: Summary) -> list[discord.Embed]:
    """A summary as embeds: one per essay (topic), per author (perspectives), or one for
    an essay, each point a quote with its position, the attribution in the footer."""
    if summary.abstained:
        return [decline_embed(summary.subject)]
    groups: dict[str, list[Excerpt]] = {}
    for p in summary.points:
        key = p.author if summary.kind == SummaryKind.PERSPECTIVES else p.doc_id
        groups.setdefault(key, []).append(p)
    embeds: list[discord.Embed] = []
    per_group = max(1, EMBED_TOTAL // max(1, len(groups)) - 400)
    for key, points in list(groups.items())[:EMBEDS_PER_MESSAGE]:
        first = points[0]
        heading = key if summary.kind == SummaryKind.PERSPECTIVES else first.essay.title
        budget = min(EMBED_DESCRIPTION, per_group) // max(1, len(points)) - 16
        lines = [f"{_quote_block(p.quote, max(60, budget))}\n*{position(p)}*" for p in points]
        embed = discord.Embed(
            title=trim(heading, EMBED_TITLE),
            url=first.essay.link,
            description="\n\n".join(lines)[:EMBED_DESCRIPTION],
            colour=COLOUR,
        )
        if summary.kind == SummaryKind.PERSPECTIVES and len({p.doc_id for p in points}) == 1:
            footer = f"— {attribution(first)}"
        elif summary.kind == SummaryKind.PERSPECTIVES:
            footer = f"— {first.author}, in several essays"
        else:
            footer = f"— {attribution(first)}"
        embed.set_footer(text=trim(footer, FOOTER))
        embeds.append(embed)
    return fit(embeds)


#: Essays on one page of /essays: with every field at its budget a page stays under 6,000.
ESSAYS_PER_PAGE = 10
_ESSAY_NAME, _ESSAY_VALUE = 150, 400


def essay_pages(count: int) -> int:
    """How many pages /essays needs for `count` essays."""
    return max(1, -(-count // ESSAYS_PER_PAGE))


def essays_embed(essays: Sequence[EssayInfo], page: int = 0) -> discord.Embed:
    """One page of the library listing: a field per essay, and where the page stands."""
    embed = discord.Embed(title="The library", colour=COLOUR)
    if not essays:
        embed.description = "The library is empty."
        return embed
    pages = essay_pages(len(essays))
    page = min(max(page, 0), pages - 1)
    first = page * ESSAYS_PER_PAGE
    shown = list(essays)[first : first + ESSAYS_PER_PAGE]
    embed.description = f"{len(essays)} essays."
    for e in shown:
        meta = ", ".join(x for x in (e.essay.author, e.essay.date, e.essay.source) if x)
        embed.add_field(
            name=trim(e.essay.title, _ESSAY_NAME),
            value=trim(f"`{e.essay.doc_id}` · {e.passages} passages\n{escape(meta)}", _ESSAY_VALUE),
            inline=False,
        )
    embed.set_footer(
        text=f"Essays {first + 1}–{first + len(shown)} of {len(essays)} · page {page + 1}/{pages}"
    )
    return embed


def plain(text: str) -> str:
    """A plain message, escaped and within the content limit."""
    return trim(escape(text), CONTENT)
