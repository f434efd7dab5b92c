"""Checking: what the essays say about any message (Find sources), and who said a line.

**Find sources** is a message command (right-click or long-press a message -> Apps): the
excerpts that bear on what the message says, shown only to the person who asked, with a
**Post publicly** button that posts them as a reply to that message (pinging no one). It
never says whether the message is right: the heading is "What the essays say about this".
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.answer.results import Answer
from bot.frontends.discord.embeds import (
    MAX_QUESTION,
    NO_MENTIONS,
    decline_embed,
    excerpt_embeds,
    whosaid_embeds,
)
from bot.frontends.discord.interactions import Interaction, ask_cooldown, respond
from bot.frontends.discord.views import PAGE, ExpiringView, LiveViews, send_with_view
from bot.frontends.text import SOURCES_HEADING

if TYPE_CHECKING:
    from bot.frontends.discord.client import ExplainerBot

POSTED = "Posted as a reply to the message."


class SourcesView(ExpiringView):
    """The asker's **Post publicly** button under the excerpts found for a message."""

    def __init__(self, target: discord.Message, answer: Answer, owner_id: int, live: LiveViews):
        super().__init__(owner_id, live)
        self.target = target
        self.answer = answer

    @discord.ui.button(label="Post publicly", style=discord.ButtonStyle.primary)
    async def post(self, interaction: Interaction, button: discord.ui.Button[Any]) -> None:
        try:
            await self.target.reply(
                content=f"**{SOURCES_HEADING}**",
                embeds=excerpt_embeds(self.answer.excerpts[:PAGE]),
                allowed_mentions=NO_MENTIONS,
                mention_author=False,
            )
        except discord.HTTPException as exc:
            await respond(interaction, content=f"I can't post in that channel ({exc.text}).")
            return
        button.disabled = True
        await interaction.response.edit_message(content=POSTED, view=self)


class CheckingCog(commands.Cog):
    """Find sources (a message command) and /whosaid."""

    def __init__(self, bot: ExplainerBot) -> None:
        self.bot = bot
        self.menu = app_commands.ContextMenu(name="Find sources", callback=self.find_sources)
        self.menu.add_check(ask_cooldown)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    async def find_sources(self, interaction: Interaction, message: discord.Message) -> None:
        """What the essays say about a message: verbatim excerpts, only for the asker."""
        if not message.content.strip():
            await respond(interaction, content="That message has no text to look up.")
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        answer = await asyncio.to_thread(self.bot.engine.sources, message.content, PAGE)
        if answer.abstained:
            await respond(interaction, embed=decline_embed(answer.question, answer))
            return
        view = SourcesView(message, answer, interaction.user.id, self.bot.live_views)
        await send_with_view(
            interaction.followup.send, view, content=f"**{SOURCES_HEADING}**",
            embeds=excerpt_embeds(answer.excerpts), ephemeral=True,
            allowed_mentions=NO_MENTIONS, wait=True,
        )  # fmt: skip

    @app_commands.command(name="whosaid", description="Find who wrote a line you remember")
    @app_commands.describe(quote="The line, as you remember it (at least three words)")
    @app_commands.check(ask_cooldown)
    async def whosaid(
        self, interaction: Interaction, quote: app_commands.Range[str, 1, MAX_QUESTION]
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        result = await asyncio.to_thread(self.bot.engine.who_said, quote)
        await respond(interaction, embeds=whosaid_embeds(result))


async def setup(bot: ExplainerBot) -> None:
    """Extension entry point."""
    await bot.add_cog(CheckingCog(bot))
