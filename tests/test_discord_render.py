"""Discord's limits and rules, checked on the pure rendering functions."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bot.answer.engine import EssayInfo
from bot.answer.results import Answer, Excerpt
from bot.answer.summarize import Summary, SummaryKind
from bot.frontends.discord.embeds import (
    ELLIPSIS,
    decline_embed,
    escape,
    essay_pages,
    essays_embed,
    excerpt_embeds,
    summary_embeds,
    trim,
)
from bot.ingest.model import EssayMeta, Role

#: Discord's documented limit on the characters of all a message's embeds together.
DISCORD_EMBEDS_TOTAL = 6000

WORDS = st.lists(
    st.text(alphabet="abcdefghij*_~`|>@.!?,", min_size=1, max_size=12), min_size=1, max_size=400
)


@example(words=[">>>>>>", ">>>>>>>", ">>>>>>>>", ">>>>>>>>>>", ">>>>>>,", ">"], limit=43)
@given(words=WORDS, limit=st.integers(min_value=20, max_value=2000))
def test_trim_never_exceeds_and_never_cuts_a_word(words: list[str], limit: int) -> None:
    text = " ".join(words)
    out = trim(text, limit)
    assert len(out) <= limit
    if out == text.strip():
        return
    assert out.endswith(ELLIPSIS)
    body = out[: -len(ELLIPSIS)]
    assert text.startswith(body)
    rest = text[len(body) :]
    # The cut is at a space (a word or sentence boundary), where the punctuation that
    # closed the last word kept may be dropped ("war, and" -> "war…"), unless the first
    # word alone was too long.
    assert re.match(r"[,;:—–-]*(?: |$)", rest) or " " not in text[:limit], rest[:20]


def _excerpt(quote: str, title: str = "T") -> Excerpt:
    return Excerpt(quote=quote, essay=EssayMeta("d", title, "A", None, "S"), author="A",
                   role=Role.ESSAY, start=0, end=len(quote), score=1.0, paragraph=1)  # fmt: skip


def test_long_quotes_fit_every_limit() -> None:
    sentence = "This sentence is one of many in a very long quotation about the war. "
    ex = [_excerpt(sentence * 80, title="A very long title " * 30) for _ in range(10)]
    embeds = excerpt_embeds(ex)
    assert len(embeds) == 10
    assert sum(len(e) for e in embeds) <= DISCORD_EMBEDS_TOTAL
    for e in embeds:
        assert len(e.title or "") <= 256 and len(e.description or "") <= 4096
        assert (e.description or "").endswith(ELLIPSIS)
        assert (e.description or "").rstrip(ELLIPSIS).endswith(".")  # cut after a sentence


def test_markdown_is_escaped_and_mentions_are_inert() -> None:
    embed = excerpt_embeds([_excerpt("@everyone look at *this* and _that_ <@123>")])[0]
    assert "\\*this\\*" in (embed.description or "") and "\\_that\\_" in (embed.description or "")
    assert escape("a|b`c") == "a\\|b\\`c"


def test_summary_of_many_points_fits() -> None:
    points = tuple(_excerpt("A point that is made at some length. " * 40) for _ in range(7))
    embeds = summary_embeds(Summary(SummaryKind.ESSAY, "d", False, points))
    assert sum(len(e) for e in embeds) <= DISCORD_EMBEDS_TOTAL
    assert all(len(e.description or "") <= 4096 for e in embeds)


def test_essays_listing_pages_through_every_essay() -> None:
    essays = [
        EssayInfo(EssayMeta(f"id-{i}", f"A long title number {i} " * 20, "An Author " * 30,
                            "2020-01-01", "Source " * 60), 3)
        for i in range(300)
    ]  # fmt: skip
    pages = essay_pages(len(essays))
    seen = []
    for page in range(pages):
        embed = essays_embed(essays, page)
        assert len(embed) <= DISCORD_EMBEDS_TOTAL and len(embed.fields) <= 25
        assert f"page {page + 1}/{pages}" in (embed.footer.text or "")
        seen += [f.value.split("`")[1] for f in embed.fields]
    assert seen == [e.essay.doc_id for e in essays]  # every essay once, in order, none dropped


def test_markdown_heavy_summaries_fit_after_escaping() -> None:
    """Escaping doubles a markdown-heavy quote; the 6,000 total is counted after it."""
    heavy = "*_~`|>* " * 150
    points = tuple(
        replace(_excerpt(f"{heavy} point {i}.", f"Essay {i // 2}"),
                essay=EssayMeta(f"d{i // 2}", f"Essay {i // 2}", f"Author {i // 2}"),
                author=f"Author {i // 2}")
        for i in range(20)
    )  # fmt: skip
    for kind in (SummaryKind.TOPIC, SummaryKind.PERSPECTIVES):
        embeds = summary_embeds(Summary(kind, "x", False, points))
        assert sum(len(e) for e in embeds) <= DISCORD_EMBEDS_TOTAL
        assert all(len(e.description or "") <= 4096 for e in embeds)
        assert all(not (e.description or "").endswith("\\\\" + ELLIPSIS) for e in embeds)
    embeds = excerpt_embeds([_excerpt(heavy * 3) for _ in range(10)])
    assert sum(len(e) for e in embeds) <= DISCORD_EMBEDS_TOTAL


def test_a_decline_names_what_no_essay_mentions_escaped_and_within_limits() -> None:
    names = ("Robespierre", "*Lilliput*", "x" * 3000)
    embed = decline_embed("about them", Answer("about them", True, (), 0.0, names))
    assert embed.description is not None and len(embed.description) <= 1000
    assert embed.description.startswith("The library does not cover that: no essay mentions ")
    assert "Robespierre, \\*Lilliput\\*" in embed.description  # markdown shown, not applied
    plain = decline_embed("about it", Answer("about it", True, (), 0.2))
    assert plain.description is not None and "no essay mentions" not in plain.description


#: Markdown Discord renders in a message or an embed description, each live only when its
#: opening character has no backslash before it (Discord's own escape rule).
LIVE_MARKDOWN = {
    "masked link": re.compile(r"(?<!\\)\[[^\]\n]*(?<!\\)\]\("),
    "heading": re.compile(r"^(?:> )?[ \t]*#{1,3} ", re.M),
    "subtext": re.compile(r"^(?:> )?[ \t]*-# ", re.M),
    "list": re.compile(r"^(?:> )?[ \t]*(?:[-*+]|\d+[.)]) ", re.M),
    "spoiler": re.compile(r"(?<!\\)\|\|"),
    "code": re.compile(r"(?<!\\)`"),
    "emphasis": re.compile(r"(?<!\\)[*_~]"),
    "mention, channel, timestamp or emoji": re.compile(r"(?<!\\)<[@#:at]"),
}
_UNESCAPE = re.compile(r"\\([^0-9A-Za-z\s])")


@pytest.mark.parametrize(
    "quote",
    [
        "the [report](https://good.example) and the [summary](https://evil.example/phish)",
        "# A heading in the essay",
        "-# small print",
        "- a list item that was a sentence",
        "1. a numbered point",
        "He said ||nothing|| and `rm -rf` ~~struck~~ <t:0:R> <@&123> <:emoji:1> <#42>",
    ],
)
def test_quoted_text_carries_no_live_markdown(quote: str) -> None:
    """Whatever markdown an essay's words hold renders as the words themselves."""
    shown = excerpt_embeds([_excerpt(quote)])[0].description or ""
    for construct, pattern in LIVE_MARKDOWN.items():
        assert not pattern.search(shown), f"a live {construct} in {shown!r}"
    assert _UNESCAPE.sub(r"\1", shown) == f"> {quote}"  # read as written


@pytest.mark.parametrize(
    ("url", "linked"),
    [
        ("https://example.org/essay", True),
        ("http://example.org/essay", True),
        ("javascript:alert(document.cookie)", False),
        ("data:text/html,<script>", False),
        ("file:///etc/passwd", False),
        ("//example.org/no-scheme", False),
    ],
)
def test_only_web_addresses_are_linked(url: str, linked: bool) -> None:
    essay = EssayMeta("d", "T", "A", None, "S", url=url)
    ex = replace(_excerpt("A quoted sentence."), essay=essay)
    assert excerpt_embeds([ex])[0].url == (url if linked else None)
