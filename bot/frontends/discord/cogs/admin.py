"""Administering the library: /reindex and /add-essay, only in its home servers.

The commands are registered as guild commands of ADMIN_GUILD_IDS alone (none configured:
not registered at all, and the library is administered from the CLI), and every run is
checked again (:func:`~bot.frontends.discord.interactions.is_admin`): a registration
left over elsewhere, or a server admin's override, cannot reach the library.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.admin.library import RejectedError
from bot.frontends.discord.embeds import plain
from bot.frontends.discord.interactions import Interaction, is_admin, respond, user_label

if TYPE_CHECKING:
    from bot.frontends.discord.client import ExplainerBot

admin_log = logging.getLogger("bot.admin")


class AdminCog(commands.Cog):
    """Administering the library (in a home server: Manage Server, or ADMIN_ROLE_ID)."""

    def __init__(self, bot: ExplainerBot) -> None:
        self.bot = bot

    @app_commands.command(name="reindex", description="Rebuild the index from the library folder")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @app_commands.check(is_admin)
    async def reindex(self, interaction: Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        who = user_label(interaction)
        admin_log.info("reindex requested by %s", who)
        report = await asyncio.to_thread(self.bot.admin.reindex, who)
        admin_log.info("reindex by %s done: %s", who, report.summary().splitlines()[0])
        await respond(interaction, content=plain(report.summary()))

    @app_commands.command(name="add-essay", description="Add an essay file to the library")
    @app_commands.describe(
        file="A .md, .txt, .html or .pdf file",
        title="The essay's title",
        author="Who wrote it",
        date="When it was published",
        source="Where it was published",
    )
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @app_commands.check(is_admin)
    async def add_essay(
        self,
        interaction: Interaction,
        file: discord.Attachment,
        title: str | None = None,
        author: str | None = None,
        date: str | None = None,
        source: str | None = None,
    ) -> None:
        limit = self.bot.settings.max_upload_bytes
        if file.size > limit:  # refuse before downloading anything
            raise RejectedError(
                f"{file.filename} is {file.size / 1e6:.1f} MB; the limit is {limit / 1e6:.1f} MB"
            )
        await interaction.response.defer(ephemeral=True, thinking=True)
        data = await file.read()
        who = user_label(interaction)
        admin_log.info("add-essay %s (%d bytes) by %s", file.filename, len(data), who)
        meta = {"title": title, "author": author, "date": date, "source": source}
        change = await asyncio.to_thread(self.bot.admin.add, file.filename, data, who, **meta)
        admin_log.info("add-essay by %s: added %s", who, change.doc_id)
        await respond(interaction, content=plain(change.summary()))


async def setup(bot: ExplainerBot) -> None:
    """Extension entry point: the admin commands exist only in the home servers."""
    homes = bot.settings.admin_guild_ids
    if homes:
        await bot.add_cog(AdminCog(bot), guilds=[discord.Object(id=g) for g in homes])
