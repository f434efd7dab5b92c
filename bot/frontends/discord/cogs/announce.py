"""Announcements: a card in ANNOUNCE_CHANNEL_ID for each essay added or changed.

However the essay arrived (``/add-essay``, the command line in another process, a
reindex), the live index is what counts: the essays it holds are compared with those
already announced (kept in INDEX_DIR, so a restart announces nothing twice, and the first
start announces nothing at all), under a file lock, so several bot processes sharing the
index post each card once. Nothing is posted for an unchanged reindex.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import discord
from discord.ext import commands
from filelock import FileLock

from bot.errors import UserError
from bot.frontends.discord.embeds import NO_MENTIONS, announcement_embed

if TYPE_CHECKING:
    from bot.frontends.discord.client import ExplainerBot

log = logging.getLogger("bot.discord")

ANNOUNCED = "announced.json"  # essay id -> content hash, as last announced
CHECK_EVERY = 60.0  # seconds between looks for a new generation made elsewhere (the CLI)


class AnnounceCog(commands.Cog):
    """Posts a card for each new or changed essay (only with ANNOUNCE_CHANNEL_ID)."""

    def __init__(self, bot: ExplainerBot) -> None:
        self.bot = bot
        self.interval = CHECK_EVERY
        self._watcher: asyncio.Task[None] | None = None
        self._busy = asyncio.Lock()  # one check at a time in this process...

    async def cog_load(self) -> None:
        if self.bot.settings.announce_channel_id:
            self._watcher = asyncio.create_task(self._watch())

    async def cog_unload(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher

    async def _watch(self) -> None:
        await self.bot.wait_until_ready()
        while True:
            try:
                await self.check()
            except Exception:
                log.exception("announcing new essays failed")
            await asyncio.sleep(self.interval)  # a poll period, not a wait for anything

    @commands.Cog.listener()
    async def on_library_changed(self) -> None:
        """An admin command changed the library here: announce at once."""
        if self.bot.settings.announce_channel_id:
            await self.check()

    @property
    def _path(self) -> Path:
        return self.bot.settings.index_dir / ANNOUNCED

    async def check(self) -> int:
        """Announce the essays added or changed since the last announcement.

        Returns:
            How many cards were posted.
        """
        channel_id = self.bot.settings.announce_channel_id
        if not channel_id:
            return 0
        current = await asyncio.to_thread(self.bot.engine.essay_hashes)
        # ...and across processes sharing the index (taken in a thread, let go here).
        lock = FileLock(str(self.bot.settings.index_dir / "announce.lock"), thread_local=False)
        async with self._busy:
            await asyncio.to_thread(lock.acquire)
            try:
                return await self._announce(channel_id, current)
            finally:
                lock.release()

    async def _announce(self, channel_id: int, current: dict[str, str]) -> int:
        try:
            known = json.loads(self._path.read_text())
        except (OSError, ValueError):  # the first start: everything is already known
            self._path.write_text(json.dumps(current))
            return 0
        channel = self.bot.get_partial_messageable(channel_id)
        posted = 0
        for doc_id, digest in current.items():
            if known.get(doc_id) == digest:
                continue
            try:
                essay, summary = await asyncio.to_thread(self.bot.engine.key_points, doc_id, 2)
            except UserError:  # removed since the listing: nothing to announce
                continue
            try:
                await channel.send(embed=announcement_embed(essay, summary, doc_id in known),
                                   allowed_mentions=NO_MENTIONS)  # fmt: skip
            except discord.HTTPException as exc:
                log.warning("could not announce %s in channel %s: %s %s", doc_id, channel_id,
                            exc.status, exc.text)  # fmt: skip
                break  # try again on the next check
            known[doc_id] = digest
            posted += 1
        known = {d: h for d, h in known.items() if d in current}  # a re-added essay is news
        self._path.write_text(json.dumps(known))
        return posted


async def setup(bot: ExplainerBot) -> None:
    """Extension entry point."""
    await bot.add_cog(AnnounceCog(bot))
