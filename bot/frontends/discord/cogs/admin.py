"""Administering the library: /reindex and /add-essay, only in its home servers.

The commands are registered as guild commands of ADMIN_GUILD_IDS alone (none configured:
not registered at all, and the library is administered from the CLI), and every run is
checked again (:func:`~bot.frontends.discord.interactions.is_admin`): a registration
left over elsewhere, or a server admin's override, cannot reach the library.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.admin.transaction import RejectedError
from bot.answer.engine import Progress
from bot.frontends.discord.embeds import NO_MENTIONS, gaps_embed, plain
from bot.frontends.discord.errors import log_unexpected
from bot.frontends.discord.interactions import Interaction, is_admin, respond, user_label

if TYPE_CHECKING:
    from bot.frontends.discord.client import ExplainerBot

admin_log = logging.getLogger("bot.admin")

#: Discord's interaction tokens last 15 minutes; a job stops using its token a little
#: before, and its report then goes by the fallback (ADMIN_LOG_CHANNEL_ID, or a DM).
TOKEN_LIFETIME = 15 * 60 - 30
#: At most one progress edit per this many seconds (Discord rate-limits edits).
PROGRESS_INTERVAL = 5.0


def progress_text(what: str, stage: str, done: int, total: int) -> str:
    """One line saying how a job is going."""
    if stage == "embed" and total:
        return f"{what}: embedding passages, {done:,} / {total:,} ({100 * done // total}%)…"
    if stage.startswith("write-") or stage in ("rename", "switch", "prune"):
        return f"{what}: writing the new index…"
    steps = {"parse": "reading the library", "key-points": "finding each essay's key points"}
    return f"{what}: {steps.get(stage, stage)}…"


class AdminJob:
    """A long admin job's progress on its deferred message, and its report however long
    it ran.

    Progress comes from the worker thread; the message is edited at most every
    `interval` seconds through the interaction's token while it lasts. A report that
    comes later (a large library's rebuild can outlast the token's 15 minutes) goes to
    ADMIN_LOG_CHANNEL_ID, or by DM to the admin who started the job.
    """

    def __init__(self, interaction: Interaction, what: str, lifetime: float, interval: float):
        self.interaction = interaction
        self.what = what
        self.loop = asyncio.get_running_loop()
        self.deadline = self.loop.time() + lifetime
        self.interval = interval
        self.latest = ""
        self.changed = asyncio.Event()
        self.token_works = True
        self.pump = asyncio.create_task(self._pump())

    def progress(self, stage: str, done: int, total: int) -> None:
        """The build's progress hook (called from the worker thread)."""
        text = progress_text(self.what, stage, done, total)
        self.loop.call_soon_threadsafe(self._set, text)

    def _set(self, text: str) -> None:
        self.latest = text
        self.changed.set()

    async def _pump(self) -> None:
        while True:
            await self.changed.wait()
            self.changed.clear()
            await self._edit(self.latest)
            await asyncio.sleep(self.interval)  # a rate limit, not a wait for anything

    async def _edit(self, text: str) -> bool:
        if not self.token_works or self.loop.time() >= self.deadline:
            self.token_works = False
            return False
        try:
            await self.interaction.edit_original_response(
                content=plain(text), allowed_mentions=NO_MENTIONS
            )
            return True
        except discord.HTTPException as exc:
            admin_log.warning(
                "%s: the interaction's token no longer works (%s %s); the report goes by "
                "the fallback", self.what, exc.status, exc.text,
            )  # fmt: skip
            self.token_works = False
            return False

    async def finish(self, text: str) -> None:
        """Show the final report: on the job's message, else by the fallback."""
        self.pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.pump
        if not await self._edit(text):
            await self._deliver(text)

    async def _deliver(self, text: str) -> None:
        bot = self.interaction.client
        content = plain(f"{self.what} (asked by {self.interaction.user}) finished:\n{text}")
        channel_id = bot.settings.admin_log_channel_id
        try:
            if channel_id:
                await bot.get_partial_messageable(channel_id).send(
                    content, allowed_mentions=NO_MENTIONS
                )
            else:
                await self.interaction.user.send(content, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as exc:
            admin_log.error("%s: could not deliver the report (%s %s): %s", self.what,
                            exc.status, exc.text, text)  # fmt: skip


class AdminCog(commands.Cog):
    """Administering the library (in a home server: Manage Server, or ADMIN_ROLE_ID)."""

    def __init__(self, bot: ExplainerBot) -> None:
        self.bot = bot
        self.token_lifetime = TOKEN_LIFETIME
        self.progress_interval = PROGRESS_INTERVAL

    async def _run_job(
        self, interaction: Interaction, what: str, work: Callable[[Progress], str]
    ) -> None:
        """Run `work` (given a progress hook, returning its report) off the event loop,
        showing its progress and delivering its report or its failure."""
        job = AdminJob(interaction, what, self.token_lifetime, self.progress_interval)
        try:
            report = await asyncio.to_thread(work, job.progress)
        except Exception as exc:  # noqa: BLE001 - the one error path says what to show
            report = log_unexpected(what, exc, admin_log)
        await job.finish(report)
        self.bot.dispatch("library_changed")

    @app_commands.command(name="reindex", description="Rebuild the index from the library folder")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @app_commands.check(is_admin)
    async def reindex(self, interaction: Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        who = user_label(interaction)
        admin_log.info("reindex requested by %s", who)

        def work(progress: Progress) -> str:
            report = self.bot.admin.reindex(who, progress=progress)
            admin_log.info("reindex by %s done: %s", who, report.summary().splitlines()[0])
            return report.summary()

        await self._run_job(interaction, "Reindex", work)

    @app_commands.command(
        name="gaps", description="What the community asked that the library lacks"
    )
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @app_commands.check(is_admin)
    async def gaps(self, interaction: Interaction) -> None:
        found = await asyncio.to_thread(self.bot.engine.feedback.gaps, 15)
        await respond(interaction, embed=gaps_embed(found))

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

        def work(progress: Progress) -> str:
            change = self.bot.admin.add(file.filename, data, who, progress, **meta)
            admin_log.info("add-essay by %s: added %s", who, change.doc_id)
            return change.summary()

        await self._run_job(interaction, f"Adding {file.filename}", work)


async def setup(bot: ExplainerBot) -> None:
    """Extension entry point: the admin commands exist only in the home servers."""
    homes = bot.settings.admin_guild_ids
    if homes:
        await bot.add_cog(AdminCog(bot), guilds=[discord.Object(id=g) for g in homes])
