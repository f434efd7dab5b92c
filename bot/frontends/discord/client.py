"""The Discord bot: engine and settings passed in, cogs loaded in ``setup_hook``, one
error handler for every command.

Nothing here decides what to answer (:mod:`bot.answer.engine` and
:mod:`bot.admin.library` do). CPU work runs in a few threads (``asyncio.to_thread``, on
the bot's own :data:`WORKER_THREADS`) so the gateway heartbeat never stalls, and nothing
the bot sends can ping anyone.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.admin.library import LibraryAdmin, recover
from bot.answer.engine import Engine
from bot.errors import store_problem
from bot.frontends.discord.cogs import EXTENSIONS
from bot.frontends.discord.embeds import NO_MENTIONS
from bot.frontends.discord.interactions import Cooldowns, Interaction, report_error
from bot.frontends.discord.views import LiveViews
from bot.settings import Settings

log = logging.getLogger("bot.discord")
#: The servers this bot registered commands to, so a later run can empty stale ones.
REGISTRATIONS = "discord-guilds.json"
#: Cost bound: the threads the bot computes in. Two answer questions (the machine's two
#: cores: more only interleave them, every answer later); two more are for what waits
#: long (an admin's reindex, an announcement waiting for the writers' lock). Python's
#: default pool (cores + 4) let 5,000 questions in a row grow the bot by 10.6%: each
#: thread keeps its own malloc arena.
WORKER_THREADS = 4


class SyncRefused(RuntimeError):
    """Discord refused to register the commands; the message says the likely cause."""


class ExplainerTree(app_commands.CommandTree["ExplainerBot"]):
    """One error handler for every command: an ephemeral reply, never a silent failure."""

    async def on_error(self, interaction: Interaction, error: app_commands.AppCommandError) -> None:
        name = getattr(interaction.command, "name", None)
        await report_error(interaction, error, f"command {name!r}")


class ExplainerBot(commands.AutoShardedBot):
    """The bot: holds the engine, the admin actions and the settings.

    Args:
        engine: The engine that answers (shared with nothing else in the process).
        settings: The settings.
        **options: Passed to :class:`discord.ext.commands.AutoShardedBot`.
    """

    def __init__(self, engine: Engine, settings: Settings, **options: Any) -> None:
        intents = discord.Intents.default()  # mentions and DMs carry their text
        if settings.shard_count is not None:  # several processes split Discord's shards
            options.setdefault("shard_count", settings.shard_count)
            options.setdefault("shard_ids", list(settings.shard_ids) or None)
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            tree_cls=ExplainerTree,
            allowed_mentions=NO_MENTIONS,
            help_command=None,
            **options,
        )
        self.engine = engine
        self.settings = settings
        self.admin = LibraryAdmin(engine)
        self.background: asyncio.Task[None] | None = None
        self.cooldowns = Cooldowns()
        self.live_views: LiveViews = {}

    async def setup_hook(self) -> None:
        started = time.perf_counter()
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(WORKER_THREADS, thread_name_prefix="bot")
        )
        for line in await asyncio.to_thread(recover, self.engine):  # before serving
            log.warning("recovered an interrupted change: %s", line)
        await asyncio.to_thread(self.engine.warm_up)
        log.info("model and index loaded in %.1f s", time.perf_counter() - started)
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        if await asyncio.to_thread(self.engine.is_stale):
            # Questions are answered from the live index meanwhile.
            self.background = asyncio.create_task(self._reindex("startup: the library changed"))
        if 0 in (self.settings.shard_ids or (0,)):  # one process registers the commands
            await self.sync_commands()

    async def sync_commands(self) -> None:
        """Register the commands where they belong, and nowhere else.

        Everyone's commands are global, or with DISCORD_GUILD_ID (development) copied to
        that server only, the global registration then emptied so no stale copy stays
        live. The admin commands are guild commands of the home servers alone. A server
        registered by an earlier run and no longer configured (a former development or
        home server) is emptied too.

        Raises:
            SyncRefused: Discord refused a registration (a wrong server id, or the bot
                invited without the applications.commands scope).
        """
        dev = self.settings.discord_guild_id
        guilds = {g for g in (dev, *self.settings.admin_guild_ids) if g}
        if dev:
            self.tree.copy_global_to(guild=discord.Object(id=dev))
            self.tree.clear_commands(guild=None)
        for stale in self._registered_guilds() - guilds:
            self.tree.clear_commands(guild=discord.Object(id=stale))
            await self._sync(stale)
        first = [dev] if dev else []  # then global: everyone's, or emptied in development
        for scope in [*first, None, *sorted(guilds - {dev})]:
            await self._sync(scope)
        self._remember_guilds(guilds)

    async def _sync(self, guild: int | None) -> None:
        where = "globally" if guild is None else f"to server {guild}"
        try:
            synced = await self.tree.sync(guild=None if guild is None else discord.Object(id=guild))
        except discord.HTTPException as exc:
            raise SyncRefused(
                f"Discord refused to register the commands {where} ({exc.status}: "
                f"{exc.text or 'no reason given'}); check DISCORD_GUILD_ID and "
                "ADMIN_GUILD_IDS, and that the bot was invited with the "
                "applications.commands scope"
            ) from exc
        log.info("synced %d commands %s", len(synced), where)

    def _registered_guilds(self) -> set[int]:
        """The servers an earlier run registered commands to (INDEX_DIR keeps a note)."""
        try:
            return {int(g) for g in json.loads(self._registrations.read_text())}
        except (OSError, ValueError, TypeError):
            return set()

    def _remember_guilds(self, guilds: set[int]) -> None:
        """Note where the commands are registered (a full or read-only disk only means a
        later run cannot empty a server it no longer serves: said in the log)."""
        try:
            self._registrations.parent.mkdir(parents=True, exist_ok=True)
            self._registrations.write_text(json.dumps(sorted(guilds)))
        except OSError as exc:
            log.warning(
                "%s", store_problem(exc, f"the note of registrations {self._registrations}")
            )

    @property
    def _registrations(self) -> Path:
        return self.settings.index_dir / REGISTRATIONS

    async def _reindex(self, why: str) -> None:
        """Bring the index up to date off the event loop, logging the outcome."""
        try:
            report = await asyncio.to_thread(self.admin.reindex, why)
            log.info("reindexed (%s): %s", why, report.summary().splitlines()[0])
        except Exception:
            log.exception("background reindex failed; answering from the live index")

    async def on_message(self, message: discord.Message, /) -> None:
        """No prefix commands: questions in messages are handled by the ask cog."""

    async def on_ready(self) -> None:
        log.info("ready as %s in %d guilds", self.user, len(self.guilds))


def run(settings: Settings) -> int:
    """Run the bot until interrupted; returns an exit code (2 for a token problem)."""
    token = settings.discord_token
    if not token:
        print(
            "error: DISCORD_TOKEN is not set (put it in .env; see docs/discord.md)",
            file=sys.stderr,
        )
        return 2
    discord.utils.setup_logging(level=logging.INFO)
    bot = ExplainerBot(Engine(settings), settings)

    async def main() -> None:
        async with bot:
            await bot.start(token)

    try:
        asyncio.run(main())
    except discord.LoginFailure:
        print(
            "error: Discord refused the token (DISCORD_TOKEN); reset it in the portal",
            file=sys.stderr,
        )
        return 2
    except SyncRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0
