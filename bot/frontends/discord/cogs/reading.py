"""Reading the library: /essays, /summary essay|topic, /perspectives."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.answer.engine import EssayInfo
from bot.answer.summarize import Summary
from bot.frontends.discord.embeds import (
    MAX_QUESTION,
    MAX_TOPIC,
    NO_MENTIONS,
    essay_pages,
    essays_embed,
    summary_embeds,
)
from bot.frontends.discord.interactions import Essay, Interaction, respond

if TYPE_CHECKING:
    from bot.frontends.discord.client import ExplainerBot


class EssaysView(discord.ui.View):
    """Previous / Next through the library listing, however long (never truncated)."""

    def __init__(self, essays: list[EssayInfo]) -> None:
        super().__init__(timeout=600)
        self.essays = essays
        self.page = 0
        self._update()

    def _update(self) -> None:
        self.previous.disabled = self.page == 0
        self.next.disabled = self.page >= essay_pages(len(self.essays)) - 1

    async def _show(self, interaction: Interaction, step: int) -> None:
        self.page += step
        self._update()
        await interaction.response.edit_message(
            embed=essays_embed(self.essays, self.page), view=self, allowed_mentions=NO_MENTIONS
        )

    @discord.ui.button(label="◀ Previous", style=discord.ButtonStyle.secondary)
    async def previous(self, interaction: Interaction, button: discord.ui.Button[Any]) -> None:
        await self._show(interaction, -1)

    @discord.ui.button(label="Next ▶", style=discord.ButtonStyle.secondary)
    async def next(self, interaction: Interaction, button: discord.ui.Button[Any]) -> None:
        await self._show(interaction, +1)


class ReadingCog(commands.Cog):
    """Reading the library: /essays, /summary essay|topic, /perspectives."""

    summary = app_commands.Group(
        name="summary", description="Summaries made of the essays' own sentences"
    )

    def __init__(self, bot: ExplainerBot) -> None:
        self.bot = bot

    @app_commands.command(name="essays", description="List the essays in the library")
    async def essays(self, interaction: Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        listing = await asyncio.to_thread(self.bot.engine.indexed_essays)
        if essay_pages(len(listing)) == 1:
            await respond(interaction, embed=essays_embed(listing))
        else:
            await respond(interaction, embed=essays_embed(listing), view=EssaysView(listing))

    @summary.command(name="essay", description="The key sentences of one essay, in its order")
    @app_commands.describe(essay="The essay")
    async def summary_essay(self, interaction: Interaction, essay: Essay) -> None:
        await self._deferred_summary(interaction, self.bot.engine.summary, essay.doc_id)

    @summary.command(name="topic", description="What the essays say about a topic")
    @app_commands.describe(topic="A topic, e.g. NATO or sanctions")
    async def summary_topic(
        self, interaction: Interaction, topic: app_commands.Range[str, 1, MAX_TOPIC]
    ) -> None:
        await self._deferred_summary(interaction, self.bot.engine.topic, topic)

    @app_commands.command(name="perspectives", description="Each author's position on a question")
    @app_commands.describe(question="A question the authors may disagree on")
    async def perspectives(
        self, interaction: Interaction, question: app_commands.Range[str, 1, MAX_QUESTION]
    ) -> None:
        await self._deferred_summary(interaction, self.bot.engine.perspectives, question)

    async def _deferred_summary(
        self, interaction: Interaction, compute: Callable[[str], Summary], text: str
    ) -> None:
        """Defer (embedding may take a moment), compute off the loop, follow up."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        summary = await asyncio.to_thread(compute, text)
        await respond(interaction, embeds=summary_embeds(summary))


async def setup(bot: ExplainerBot) -> None:
    """Extension entry point."""
    await bot.add_cog(ReadingCog(bot))
